/*
 * rules_api.c — the admin API of the rules: CRUD, history, restore,
 * export and import (DESIGN.md §5).
 *
 * Handlers run on the admin plane's threads and may wait on SQLite (its
 * busy timeout); the data plane never calls in here. Every write validates
 * the whole rule first (rule.c) and stores nothing when anything is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/rule.h"
#include "../rules/rules.h"
#include "../rules/rules_db.h"
#include "http.h"

/* ---- helpers ------------------------------------------------------------------------- */

/*
 * ?dry_run=: 1 (1, true), 0 (absent, empty, 0, false), or -1 for any other
 * value, and for a bare ?dry_run, which many APIs read as true: here it
 * would make the change for real.
 */
static int dry_run_value(const rk_request_t *req) {
    const char *v = rk_request_query(req, "dry_run");
    if (!v && rk_request_query_given(req, "dry_run"))
        return -1;
    if (!v || !v[0] || !strcmp(v, "0") || !strcmp(v, "false"))
        return 0;
    return !strcmp(v, "1") || !strcmp(v, "true") ? 1 : -1;
}

static bool dry_run(const rk_request_t *req) {
    return dry_run_value(req) == 1;
}

/*
 * Parses the request body as one JSON value; answers 400 invalid_json and
 * returns NULL when it is missing or malformed (trailing garbage included).
 */
static cJSON *parse_body(rk_request_t *req) {
    cJSON *doc = req->body_len ? rk_request_json(req) : NULL;
    if (!doc)
        rk_reply_bad_json(req, "one JSON document");
    return doc;
}

/* Answers the failure of a rules database call. */
static enum MHD_Result reply_db(rk_request_t *req, rk_db_status_t rc, const char *id) {
    switch (rc) {
    case RK_DB_NOT_FOUND:
        return rk_reply_error(req, 404, "not_found", "No rule '%.64s'", id);
    case RK_DB_CONFLICT:
        return rk_reply_error(req, 409, "conflict", "A rule '%.64s' exists already", id);
    case RK_DB_PRECONDITION:
        return rk_reply_error(req, 412, "precondition_failed",
                              "Rule '%.64s' changed since the ETag of If-Match was read; read it "
                              "again, nothing changed",
                              id);
    default:
        return rk_reply_error(req, 503, "rules_unavailable",
                              "The rules database did not answer; try again");
    }
}

static enum MHD_Result reply_invalid(rk_request_t *req, cJSON *errors) {
    return rk_reply_invalid(req, "invalid_rule", "The rule is not valid", errors);
}

/*
 * The database, or an answer saying it is not open, or that a change's
 * ?dry_run= is none of its values: a typo (?dry_run=yes) must not make the
 * change for real.
 */
static rk_rules_db_t *database(rk_request_t *req) {
    if (strcmp(req->method, "GET") != 0 && dry_run_value(req) < 0) {
        rk_reply_error(req, 400, "invalid_request",
                       "?dry_run= takes 1, true, 0 or false; nothing changed");
        return NULL;
    }
    rk_rules_db_t *db = rk_rules_db_instance();
    if (!db)
        rk_reply_error(req, 503, "rules_unavailable", "The rules database is not open");
    return db;
}

/* How the request changes a rule: who makes the change, whether as a dry
 * run, the state it expects the rule in (If-Match); errors listed. */
static rk_change_opts_t change_opts(const rk_request_t *req, cJSON *errors) {
    return (rk_change_opts_t){.actor = req->actor,
                              .dry_run = dry_run(req),
                              .errors = errors,
                              .if_match = rk_request_header(req, "If-Match")};
}

/* Answers a rule (taken) with its ETag. */
static enum MHD_Result reply_rule(rk_request_t *req, unsigned status, cJSON *rule) {
    char tag[RK_RULE_ETAG_SIZE];
    rk_rule_etag(rule, tag);
    return rk_reply_json_tagged(req, status, rule, tag);
}

/*
 * Answers a change of rule id: the rule as stored (or as a dry run would
 * store it) with ok_status, the problems of an invalid one, or the
 * database's failure. Takes stored and errors.
 */
static enum MHD_Result reply_change(rk_request_t *req, rk_db_status_t rc, const char *id,
                                    cJSON *stored, cJSON *errors, int ok_status) {
    if (rc == RK_DB_INVALID)
        return reply_invalid(req, errors);
    cJSON_Delete(errors);
    if (rc != RK_DB_OK) {
        cJSON_Delete(stored);
        return reply_db(req, rc, id);
    }
    return reply_rule(req, dry_run(req) ? 200 : ok_status, stored);
}

/*
 * Validates doc and stores it as a new or replacing version of rule `id`
 * (create when replace is false); with ?dry_run=1, answers what would be
 * stored. Answers the request. Takes doc.
 */
static enum MHD_Result store_rule(rk_request_t *req, cJSON *doc, bool replace) {
    rk_rules_db_t *db = database(req);
    if (!db) {
        cJSON_Delete(doc);
        return MHD_YES;
    }
    cJSON *errors = cJSON_CreateArray();
    cJSON *canon = rk_rule_canonical(doc, errors);
    cJSON_Delete(doc);
    if (!canon)
        return reply_invalid(req, errors);
    char id[RK_RULE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", cJSON_GetObjectItemCaseSensitive(canon, "id")->valuestring);
    rk_change_opts_t opts = change_opts(req, errors);
    cJSON *stored = NULL;
    rk_db_status_t rc = replace ? rk_rules_db_replace(db, canon, &opts, &stored)
                                : rk_rules_db_create(db, canon, &opts, &stored);
    cJSON_Delete(canon);
    return reply_change(req, rc, id, stored, errors, replace ? 200 : 201);
}

/*
 * The first member of an object given twice, or NULL. cJSON keeps both and
 * reads the first, where most readers (and a reviewer's diff) take the
 * last: such a document must be refused, not read one way or the other.
 */
static const char *repeated_member(const cJSON *object) {
    for (const cJSON *a = object ? object->child : NULL; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && !strcmp(a->string, b->string))
                return a->string;
    return NULL;
}

/* Checks that a body's id (if any) names the rule of the path; adds it when absent. */
static bool id_matches_path(rk_request_t *req, cJSON *doc) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (!id) {
        cJSON_AddStringToObject(doc, "id", req->params[0]);
        return true;
    }
    if (cJSON_IsString(id) && !strcmp(id->valuestring, req->params[0]))
        return true;
    cJSON *errors = cJSON_CreateArray();
    rk_rule_error(errors, "id", "must be absent or equal to the id in the path ('%.64s')",
                  req->params[0]);
    reply_invalid(req, errors);
    return false;
}

/* ---- handlers ------------------------------------------------------------------------ */

static enum MHD_Result list_rules(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *rules;
    int64_t version;
    rk_db_status_t rc = rk_rules_db_list(db, &rules, &version);
    if (rc != RK_DB_OK)
        return reply_db(req, rc, "");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "rules", rules);
    cJSON_AddNumberToObject(out, "version", (double)version);
    return rk_reply_json(req, 200, out);
}

static enum MHD_Result create_rule(rk_request_t *req) {
    cJSON *doc = parse_body(req);
    return doc ? store_rule(req, doc, false) : MHD_YES;
}

static enum MHD_Result get_rule(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *rule;
    rk_db_status_t rc = rk_rules_db_get(db, req->params[0], &rule);
    if (rc != RK_DB_OK)
        return reply_db(req, rc, req->params[0]);
    return reply_rule(req, 200, rule);
}

static enum MHD_Result put_rule(rk_request_t *req) {
    cJSON *doc = parse_body(req);
    if (!doc)
        return MHD_YES;
    if (cJSON_IsObject(doc) && !id_matches_path(req, doc)) {
        cJSON_Delete(doc);
        return MHD_YES;
    }
    return store_rule(req, doc, true);
}

/*
 * Merges the top-level fields of a patch (ctx) into the rule as stored now
 * and validates the whole: the build function of a PATCH, run inside its
 * transaction so that it always merges onto the latest version.
 */
static rk_db_status_t merge_patch(void *ctx, const cJSON *current, cJSON *errors, cJSON **canon) {
    const cJSON *patch = ctx;
    cJSON *rule = current ? cJSON_Duplicate(current, true) : NULL;
    if (!rule)
        return current ? RK_DB_ERROR : RK_DB_NOT_FOUND;
    /* a burst stored before it was refused where ignored does not block a patch;
     * one the patch gives (or keeps, changing the algorithm) is refused */
    rk_rule_drop_ignored_burst(rule);
    /* a window given either way replaces the stored window_ms */
    if (cJSON_GetObjectItemCaseSensitive(patch, "window"))
        cJSON_DeleteItemFromObjectCaseSensitive(rule, "window_ms");
    const cJSON *field;
    cJSON_ArrayForEach(field, patch) {
        cJSON_DeleteItemFromObjectCaseSensitive(rule, field->string);
        cJSON_AddItemToObject(rule, field->string, cJSON_Duplicate(field, true));
    }
    *canon = rk_rule_canonical(rule, errors);
    cJSON_Delete(rule);
    return *canon ? RK_DB_OK : RK_DB_INVALID;
}

static enum MHD_Result patch_rule(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *patch = parse_body(req);
    if (!patch)
        return MHD_YES;
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(patch);
        cJSON *errors = cJSON_CreateArray();
        rk_rule_error(errors, "", "a patch must be a JSON object of the fields to change");
        return reply_invalid(req, errors);
    }
    const char *twice = repeated_member(patch);
    if (twice) {
        cJSON *errors = cJSON_CreateArray();
        rk_rule_error(errors, twice, "appears twice");
        cJSON_Delete(patch);
        return reply_invalid(req, errors);
    }
    if (!id_matches_path(req, patch)) {
        cJSON_Delete(patch);
        return MHD_YES;
    }
    cJSON *errors = cJSON_CreateArray();
    rk_change_opts_t opts = change_opts(req, errors);
    cJSON *stored = NULL;
    rk_db_status_t rc = rk_rules_db_update(db, req->params[0], merge_patch, patch, &opts, &stored);
    cJSON_Delete(patch);
    return reply_change(req, rc, req->params[0], stored, errors, 200);
}

static enum MHD_Result delete_rule(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    rk_db_status_t rc =
        rk_rules_db_delete(db, req->params[0], req->actor, rk_request_header(req, "If-Match"));
    if (rc != RK_DB_OK)
        return reply_db(req, rc, req->params[0]);
    return rk_reply_empty(req, 204);
}

static enum MHD_Result rule_history(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *history;
    rk_db_status_t rc = rk_rules_db_history(db, req->params[0], &history);
    if (rc != RK_DB_OK)
        return reply_db(req, rc, req->params[0]);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "history", history);
    return rk_reply_json(req, 200, out);
}

static enum MHD_Result restore_rule(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    const char *id = req->params[0], *text = req->params[1];
    char *end = NULL;
    long long version = strtoll(text, &end, 10);
    if (!*text || *end || version < 1)
        return rk_reply_error(req, 404, "not_found", "Rule '%.64s' has no version '%.32s'", id,
                              text);
    cJSON *errors = cJSON_CreateArray();
    cJSON *stored = NULL;
    rk_db_status_t rc = rk_rules_db_restore(db, id, version, req->actor, &stored, errors);
    switch (rc) {
    case RK_DB_OK:
        cJSON_Delete(errors);
        return reply_rule(req, 200, stored);
    case RK_DB_INVALID:
        return rk_reply_invalid(req, "invalid_rule",
                                "That version is not valid now (as a rule, or for the rule's "
                                "overrides); edit the rule instead",
                                errors);
    case RK_DB_NOT_FOUND:
        cJSON_Delete(errors);
        return rk_reply_error(req, 404, "not_found", "Rule '%.64s' has no version %lld", id,
                              version);
    case RK_DB_CONFLICT:
        cJSON_Delete(errors);
        return rk_reply_error(req, 409, "conflict",
                              "Version %lld of rule '%.64s' deleted it; restore an earlier "
                              "version",
                              version, id);
    default:
        cJSON_Delete(errors);
        return reply_db(req, rc, id);
    }
}

static enum MHD_Result export_rules(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    /* the rules and their overrides as of one ruleset version: read again
     * when a change came between the two reads */
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON *rules;
        int64_t version, overrides_version = -1;
        rk_db_status_t rc = rk_rules_db_list(db, &rules, &version);
        if (rc != RK_DB_OK)
            return reply_db(req, rc, "");
        cJSON *overrides = rk_overrides_for_export(db, rules, &overrides_version);
        if (!overrides || overrides_version != version) {
            cJSON_Delete(rules);
            cJSON_Delete(overrides);
            if (!overrides)
                return reply_db(req, RK_DB_ERROR, "");
            continue;
        }
        char now[32];
        rk_format_time(rk_now_ms(), now);
        cJSON *out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, "version", (double)version);
        cJSON_AddStringToObject(out, "exported_at", now);
        cJSON_AddItemToObject(out, "rules", rules);
        cJSON_AddItemToObject(out, "overrides", overrides);
        return rk_reply_json(req, 200, out);
    }
    return rk_reply_error(req, 503, "rules_unavailable",
                          "The rules kept changing while they were read; try again");
}

/*
 * Validates every rule of an import document into canonical forms (a new
 * array), listing each problem as "rules[i].field". NULL when anything is
 * wrong (errors filled).
 */
static cJSON *validate_rules(const cJSON *doc, cJSON *errors) {
    const char *repeated = cJSON_IsObject(doc) ? repeated_member(doc) : NULL;
    if (repeated) {
        rk_rule_error(errors, repeated, "appears twice in the document");
        return NULL;
    }
    const cJSON *rules = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "rules");
    if (!cJSON_IsArray(rules)) {
        rk_rule_error(errors, "rules", "must be an array of rules (as answered by the export)");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rules) {
        cJSON *errs = cJSON_CreateArray();
        /* An export of an earlier version may carry a burst its algorithm
         * ignores, which that version took: a backup must import again. */
        cJSON *copy = cJSON_Duplicate(r, true);
        rk_rule_drop_ignored_burst(copy);
        cJSON *canon = copy ? rk_rule_canonical(copy, errs) : NULL;
        cJSON_Delete(copy);
        rk_rule_errors_of_item(errors, "rules", i, errs);
        cJSON_Delete(errs);
        if (canon) {
            const char *id = cJSON_GetObjectItemCaseSensitive(canon, "id")->valuestring;
            const cJSON *prev;
            bool twice = false;
            cJSON_ArrayForEach(prev, out) {
                if (!strcmp(cJSON_GetObjectItemCaseSensitive(prev, "id")->valuestring, id))
                    twice = true;
            }
            if (twice) {
                char name[32];
                snprintf(name, sizeof name, "rules[%d].id", i);
                rk_rule_error(errors, name, "'%s' appears twice in the document", id);
                cJSON_Delete(canon);
            } else {
                cJSON_AddItemToArray(out, canon);
            }
        }
        i++;
    }
    if (cJSON_GetArraySize(errors) > 0) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* An import document, validated: its canonical rules, and its overrides' rows when it has any. */
typedef struct {
    cJSON *rules, *overrides;
    int expired; /* overrides left out: their expires_at has passed */
} import_doc_t;

/*
 * Validates the document: its rules, then, when they are valid, its
 * overrides (each against its rule of the document). False when wrong.
 */
static bool validate_import(const cJSON *doc, import_doc_t *im, cJSON *errors) {
    im->rules = validate_rules(doc, errors);
    const cJSON *list =
        cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "overrides") : NULL;
    if (!list || !im->rules)
        return im->rules != NULL; /* overrides are checked against valid rules only */
    im->overrides = rk_overrides_from_document(list, im->rules, rk_now_ms(), errors, &im->expired);
    if (im->overrides)
        return true;
    cJSON_Delete(im->rules);
    im->rules = NULL;
    return false;
}

static cJSON *override_counts(const rk_override_counts_t *n, int expired) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "created", n->created);
    cJSON_AddNumberToObject(o, "updated", n->updated);
    cJSON_AddNumberToObject(o, "deleted", n->deleted);
    cJSON_AddNumberToObject(o, "expired", expired);
    return o;
}

static enum MHD_Result import_rules(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *doc = parse_body(req);
    if (!doc)
        return MHD_YES;
    cJSON *errors = cJSON_CreateArray();
    import_doc_t im = {0};
    bool valid = validate_import(doc, &im, errors);
    cJSON_Delete(doc);
    if (!valid)
        return rk_reply_invalid(req, "invalid_rule", "The document is not valid; nothing changed",
                                errors);
    bool dry = dry_run(req);
    rk_change_opts_t opts = change_opts(req, errors);
    rk_import_result_t result;
    rk_db_status_t rc = rk_rules_db_import(db, im.rules, im.overrides, &opts, &result);
    cJSON_Delete(im.rules);
    bool with_overrides = im.overrides != NULL;
    cJSON_Delete(im.overrides);
    if (rc == RK_DB_INVALID)
        return rk_reply_invalid(req, "invalid_rule", "The document is not valid; nothing changed",
                                errors);
    cJSON_Delete(errors);
    if (rc != RK_DB_OK)
        return reply_db(req, rc, "");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "created", result.created);
    cJSON_AddNumberToObject(out, "updated", result.updated);
    cJSON_AddNumberToObject(out, "deleted", result.deleted);
    if (with_overrides)
        cJSON_AddItemToObject(out, "overrides", override_counts(&result.overrides, im.expired));
    cJSON_AddNumberToObject(out, "version", (double)result.version);
    if (dry)
        cJSON_AddTrueToObject(out, "dry_run");
    return rk_reply_json(req, 200, out);
}

/* Literal paths come before "{id}": routes are matched in table order. */
const rk_route_t rk_rules_routes[] = {
    {"GET", "/api/v1/rules", list_rules, RK_ROLE_VIEWER, false},
    {"POST", "/api/v1/rules", create_rule, RK_ROLE_EDITOR, true},
    {"GET", "/api/v1/rules/export", export_rules, RK_ROLE_VIEWER, false},
    {"POST", "/api/v1/rules/import", import_rules, RK_ROLE_EDITOR, true},
    {"GET", "/api/v1/rules/{id}", get_rule, RK_ROLE_VIEWER, false},
    {"PUT", "/api/v1/rules/{id}", put_rule, RK_ROLE_EDITOR, true},
    {"PATCH", "/api/v1/rules/{id}", patch_rule, RK_ROLE_EDITOR, true},
    {"DELETE", "/api/v1/rules/{id}", delete_rule, RK_ROLE_EDITOR, true},
    {"GET", "/api/v1/rules/{id}/history", rule_history, RK_ROLE_VIEWER, false},
    {"POST", "/api/v1/rules/{id}/restore/{version}", restore_rule, RK_ROLE_EDITOR, true},
};
const size_t rk_rules_routes_len = RK_ARRAY_LEN(rk_rules_routes);
