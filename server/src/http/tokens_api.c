/*
 * tokens_api.c — /api/v1/tokens: create (the secret answered once), list
 * (never a secret) and revoke the admin plane's API tokens. Admin only.
 */
#include <stdio.h>
#include <string.h>

#include "../auth/tokens.h"
#include "../rules/rule.h"
#include "http.h"

static enum MHD_Result tokens_unavailable(rk_request_t *req) {
    return rk_reply_error(req, 503, "tokens_unavailable", "The tokens database did not answer");
}

/* A token name: 1..RK_TOKEN_NAME_MAX printable ASCII characters. */
static bool valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > RK_TOKEN_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (*p < ' ' || *p > '~')
            return false;
    return true;
}

/*
 * POST /api/v1/tokens {"name", "role", "expires_at"?}: 201 with the token,
 * whose "token" is never answered again.
 */
static enum MHD_Result create_token(rk_request_t *req) {
    cJSON *doc = req->body_len ? rk_request_json(req) : NULL;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return rk_reply_bad_json(req, "one JSON object");
    }
    cJSON *errors = cJSON_CreateArray();
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(doc, "role");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(doc, "expires_at");
    if (!cJSON_IsString(name) || !valid_name(name->valuestring))
        rk_rule_error(errors, "name", "must be 1 to %d printable ASCII characters",
                      RK_TOKEN_NAME_MAX);
    else if (rk_token_name_reserved(name->valuestring))
        rk_rule_error(errors, "name",
                      "is reserved: ratekit names the bootstrap admin token \"%s\" and changes "
                      "synchronised from Redis \"%s\" in the history",
                      RK_ACTOR_BOOTSTRAP, RK_ACTOR_SYNC);
    rk_role_t r = cJSON_IsString(role) ? rk_role_parse(role->valuestring) : RK_ROLE_NONE;
    if (r == RK_ROLE_NONE)
        rk_rule_error(errors, "role", "must be \"admin\", \"editor\" or \"viewer\"");
    int64_t expires_ms = 0;
    if (expires && !cJSON_IsNull(expires)) {
        if (!cJSON_IsString(expires) || rk_parse_time(expires->valuestring, &expires_ms) != RK_OK)
            rk_rule_error(errors, "expires_at",
                          "must be an ISO 8601 UTC time such as \"2026-11-22T10:00:00Z\", or "
                          "null");
        else if (expires_ms <= rk_now_ms())
            rk_rule_error(errors, "expires_at", "must be in the future");
    }
    const cJSON *field;
    cJSON_ArrayForEach(field, doc) {
        if (strcmp(field->string, "name") && strcmp(field->string, "role") &&
            strcmp(field->string, "expires_at"))
            rk_rule_error(errors, field->string,
                          "unknown field (a token has name, role, "
                          "expires_at)");
    }
    if (cJSON_GetArraySize(errors) > 0) {
        cJSON_Delete(doc);
        return rk_reply_invalid(req, "invalid_token", "The token is not valid", errors);
    }
    cJSON_Delete(errors);
    cJSON *out = NULL;
    rk_tokens_status_t rc = rk_tokens_create(name->valuestring, r, expires_ms, req->actor, &out);
    cJSON_Delete(doc);
    if (rc == RK_TOKENS_FULL)
        return rk_reply_error(req, 409, "conflict", "At most %d tokens may exist; revoke some",
                              RK_TOKENS_MAX);
    if (rc != RK_TOKENS_OK)
        return tokens_unavailable(req);
    return rk_reply_json(req, 201, out);
}

static enum MHD_Result list_tokens(rk_request_t *req) {
    cJSON *tokens = NULL;
    if (rk_tokens_list(&tokens) != RK_TOKENS_OK)
        return tokens_unavailable(req);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "tokens", tokens);
    return rk_reply_json(req, 200, out);
}

static enum MHD_Result delete_token(rk_request_t *req) {
    switch (rk_tokens_delete(req->params[0])) {
    case RK_TOKENS_OK:
        return rk_reply_empty(req, 204);
    case RK_TOKENS_NOT_FOUND:
        return rk_reply_error(req, 404, "not_found", "No token '%.32s'", req->params[0]);
    default:
        return tokens_unavailable(req);
    }
}

const rk_route_t rk_tokens_routes[] = {
    {"GET", "/api/v1/tokens", list_tokens, RK_ROLE_ADMIN, false},
    {"POST", "/api/v1/tokens", create_token, RK_ROLE_ADMIN, true},
    {"DELETE", "/api/v1/tokens/{id}", delete_token, RK_ROLE_ADMIN, true},
};
const size_t rk_tokens_routes_len = RK_ARRAY_LEN(rk_tokens_routes);
