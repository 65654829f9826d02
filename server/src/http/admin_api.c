/*
 * admin_api.c — the admin plane's small routes: /api/v1/info, the
 * dashboard's "try it" check, and /api/v1/counters (inspect or reset the
 * state of one client under one rule).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check/check.h"
#include "../auth/tokens.h"
#include "../check/deny_cache.h"
#include "../runtime.h"
#include "../stats/stats.h"
#include "check_answer.h"
#include "http.h"

static enum MHD_Result handle_info(rk_request_t *req) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", RK_VERSION);
    cJSON_AddStringToObject(o, "store", rk_rt.store_kind);
    cJSON_AddBoolToObject(o, "store_healthy", rk_rt.store->ops->healthy(rk_rt.store));
    cJSON_AddNumberToObject(o, "ruleset_version", (double)rk_ruleset_version(rk_rules_current()));
    cJSON_AddNumberToObject(o, "rules", (double)rk_ruleset_count(rk_rules_current()));
    cJSON_AddNumberToObject(o, "instances", (double)rk_stats_instances());
    cJSON_AddNumberToObject(o, "uptime_s", (double)((rk_now_ms() - rk_rt.started_ms) / 1000));
    /* The caller's own role, so that a client (the dashboard) offers only what it may do. */
    cJSON_AddStringToObject(o, "role", rk_role_name(req->role));
    return rk_reply_json(req, 200, o);
}

/*
 * Finds ?rule= and normalises ?key= for the counters routes; answers the
 * error itself (and returns NULL) when either is missing or unknown.
 */
static const rk_rule_t *counter_target(rk_request_t *req, char key[RK_STORE_KEY_MAX + 1],
                                       enum MHD_Result *sent) {
    const char *rule_id = rk_request_query(req, "rule");
    const char *raw_key = rk_request_query(req, "key");
    if (!rule_id || !raw_key || !raw_key[0]) {
        *sent = rk_reply_error(req, 400, "invalid_request", "Both ?rule= and ?key= are required");
        return NULL;
    }
    const rk_rule_t *rule = rk_ruleset_find(rk_rules_current(), rule_id);
    if (!rule) {
        *sent = rk_reply_error(req, 404, "unknown_rule", "No rule named '%.64s'", rule_id);
        return NULL;
    }
    /* Folded whole, however long: a key longer than the store form is hashed, folded first. */
    char *folded = strdup(raw_key);
    if (!folded) {
        *sent = rk_reply_error(req, 503, "unavailable", "Out of memory");
        return NULL;
    }
    rk_key_fold_header_names(folded);
    rk_store_normalize_key(folded, strlen(folded), key);
    free(folded);
    return rule;
}

/* GET /api/v1/counters?rule=&key=: the state, as a check of cost 0 sees it. */
static enum MHD_Result handle_counter_get(rk_request_t *req) {
    char key[RK_STORE_KEY_MAX + 1];
    enum MHD_Result sent;
    const rk_rule_t *rule = counter_target(req, key, &sent);
    if (!rule)
        return sent;
    rk_store_req_t sreq = {
        .rule_id = rule->id, .key = key, .limit = rule->limit, .cost = 0, .now_ms = -1};
    rk_decision_t d;
    if (rk_rt.store->ops->decide(rk_rt.store, &sreq, 1, &d) != RK_OK)
        return rk_reply_error(req, 503, "store_unavailable", "The store did not answer");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", rule->id);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "algorithm", rk_algorithm_name(rule->limit.algorithm));
    cJSON_AddNumberToObject(o, "limit", (double)d.limit);
    cJSON_AddNumberToObject(o, "remaining", (double)d.remaining);
    cJSON_AddNumberToObject(o, "reset_ms", (double)d.reset_ms);
    cJSON_AddNumberToObject(o, "retry_after_ms", (double)d.retry_after_ms);
    return rk_reply_json(req, 200, o);
}

/* DELETE /api/v1/counters?rule=&key=: forgets the client's state. */
static enum MHD_Result handle_counter_reset(rk_request_t *req) {
    char key[RK_STORE_KEY_MAX + 1];
    enum MHD_Result sent;
    const rk_rule_t *rule = counter_target(req, key, &sent);
    if (!rule)
        return sent;
    rk_status_t st = rk_rt.store->ops->reset(rk_rt.store, rule->id, key, rule->limit.algorithm);
    rk_deny_cache_forget(rule->id, key); /* a remembered denial ends with the state */
    if (st != RK_OK)
        return rk_reply_error(req, 503, "store_unavailable", "The store did not answer");
    return rk_reply_empty(req, 204);
}

/*
 * Why a try's body (an object) is not a direct-form check, or NULL. A
 * context-form body names no rule: without this it read as an unknown one.
 */
static const char *try_body_problem(const cJSON *root) {
    if (cJSON_GetObjectItemCaseSensitive(root, "request"))
        return "POST /api/v1/check takes a direct check, {\"rule\", \"key\", \"cost\"}; a "
               "context check ({\"request\": ...}) goes to the data plane's POST /v1/check";
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "rule")))
        return "\"rule\" (a rule id) is required";
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "key");
    if (!cJSON_IsString(key))
        return "\"key\" must be a string";
    if (!key->valuestring[0])
        return "\"key\" must not be empty";
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(root, "cost");
    if (cost && !(rk_json_whole(cost, 0) && cost->valuedouble <= RK_COST_MAX))
        return "\"cost\" must be an integer from 0 to 1000000000";
    return NULL;
}

/*
 * POST /api/v1/check: a real check (it counts), answered with the decision
 * and the headers a client would see — the dashboard's "try it" box.
 */
static enum MHD_Result handle_try(rk_request_t *req) {
    cJSON *root = rk_request_json(req);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rk_reply_bad_json(req, "a JSON object");
    }
    const char *problem = try_body_problem(root);
    if (problem) {
        cJSON_Delete(root);
        return rk_reply_error(req, 400, "invalid_request", "%s", problem);
    }
    const cJSON *rule_id = cJSON_GetObjectItemCaseSensitive(root, "rule");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "key");
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(root, "cost");
    const rk_rule_t *rule = rk_ruleset_find(rk_rules_current(), rule_id->valuestring);
    rk_check_item_t item;
    bool ready = rule && rk_check_item_init(&item, rule, key->valuestring, strlen(key->valuestring),
                                            cost ? (int64_t)cost->valuedouble : 1) == RK_OK;
    cJSON_Delete(root);
    if (!rule)
        return rk_reply_error(req, 404, "unknown_rule", "No such rule");
    if (!ready) /* no random bytes for a lease id */
        return rk_reply_error(req, 503, "unavailable", "No randomness for a lease id");
    int64_t now = rk_now_ms();
    rk_check_run(&item, 1, -1);
    rk_stats_count_checks(&item, 1); /* as the rule decision it counts: a check */
    char stack[1024];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_write_check_answer(&w, &item, 1);
    cJSON *decision = cJSON_ParseWithLength(w.buf, w.len);
    rk_jw_free(&w);
    rk_rl_headers_t h;
    rk_check_headers(&item, 1, now, &h);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "decision", decision);
    cJSON *headers = cJSON_AddObjectToObject(o, "headers");
    cJSON_AddStringToObject(headers, "RateLimit-Policy", h.policy);
    cJSON_AddStringToObject(headers, "RateLimit", h.ratelimit);
    cJSON_AddStringToObject(headers, "X-RateLimit-Limit", h.limit);
    cJSON_AddStringToObject(headers, "X-RateLimit-Remaining", h.remaining);
    cJSON_AddStringToObject(headers, "X-RateLimit-Reset", h.reset);
    if (h.retry_after[0])
        cJSON_AddStringToObject(headers, "Retry-After", h.retry_after);
    return rk_reply_json(req, 200, o);
}

const rk_route_t rk_admin_routes[] = {
    {"GET", "/api/v1/info", handle_info, RK_ROLE_VIEWER, false},
    /* A try counts against the key it names: not for read-only tokens. */
    {"POST", "/api/v1/check", handle_try, RK_ROLE_EDITOR, false},
    {"GET", "/api/v1/counters", handle_counter_get, RK_ROLE_VIEWER, false},
    {"DELETE", "/api/v1/counters", handle_counter_reset, RK_ROLE_EDITOR, false},
};
const size_t rk_admin_routes_len = RK_ARRAY_LEN(rk_admin_routes);
