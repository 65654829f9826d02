/*
 * overrides_api.c — /api/v1/rules/{id}/overrides[/{key}]: per-client
 * exceptions to a rule (a limit, and optionally a burst and a window, for one
 * client key until an expiry).
 *
 * Overrides live in SQLite beside the rules (schema/005_overrides.sql) and
 * are compiled into the rules snapshot, so the check path applies one with a
 * binary search and no lock. A change bumps the ruleset version like a rule
 * change does: it is in force here before it is answered, on every process
 * sharing the file within the reload interval, and on instances sharing
 * only Redis through the rules sync. Overrides keep no history.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/rule.h"
#include "../rules/rules.h"
#include "../rules/rules_db.h"
#include "../store/store.h"
#include "http.h"

#define NOTE_MAX 256

#define OVERRIDE_COLUMNS                                                                           \
    "rule_id, key, \"limit\", burst, window_ms, expires_at, note, created_at, updated_at, "        \
    "updated_by"

/* One operation's arguments and result, handed to the function run by the writer. */
/* An override's values, validated. */
typedef struct {
    int64_t limit, burst, window_ms; /* burst, window_ms 0: the rule's */
    bool expires;                    /* expires_ms given (it may be 0, the epoch) */
    int64_t expires_ms;
    const char *note; /* points into the JSON it was read from */
} values_t;

typedef struct {
    const char *rule_id, *key;
    /* put */
    values_t v;
    const char *actor;
    const cJSON *doc; /* the body of a put, validated inside its transaction */
    cJSON *errors;    /* its problems (RK_DB_INVALID) */
    /* answers */
    cJSON *out;
} op_t;

/* ---- helpers ----------------------------------------------------------------------- */

static rk_rules_db_t *database(rk_request_t *req) {
    rk_rules_db_t *db = rk_rules_db_instance();
    if (!db)
        rk_reply_error(req, 503, "rules_unavailable", "The rules database is not open");
    return db;
}

/*
 * A time column, or null. exact: to the ms when it has any (an expiry put
 * with them is read back as put); else to the second, as every stamp is.
 */
static void add_time_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int col, bool exact) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    int64_t ms = sqlite3_column_int64(st, col);
    char at[32];
    if (exact && ms % 1000)
        rk_format_time_ms(ms, at);
    else
        rk_format_time(ms, at);
    cJSON_AddStringToObject(o, name, at);
}

static void add_int_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, col));
}

/* The override of a row of OVERRIDE_COLUMNS as JSON (a new cJSON). */
static cJSON *override_json(sqlite3_stmt *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddStringToObject(o, "key", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddNumberToObject(o, "limit", (double)sqlite3_column_int64(st, 2));
    add_int_or_null(o, "burst", st, 3);
    add_int_or_null(o, "window_ms", st, 4);
    add_time_or_null(o, "expires_at", st, 5, true);
    cJSON_AddStringToObject(o, "note", (const char *)sqlite3_column_text(st, 6));
    add_time_or_null(o, "created_at", st, 7, false);
    add_time_or_null(o, "updated_at", st, 8, false);
    cJSON_AddStringToObject(o, "updated_by", (const char *)sqlite3_column_text(st, 9));
    bool expired =
        sqlite3_column_type(st, 5) != SQLITE_NULL && sqlite3_column_int64(st, 5) <= rk_now_ms();
    cJSON_AddBoolToObject(o, "expired", expired);
    return o;
}

/* Whether the rule exists (inside the writer's lock); NOT_FOUND when not. */
static rk_db_status_t rule_exists(sqlite3 *conn, const char *rule_id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "SELECT 1 FROM rules WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, rule_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? RK_DB_OK : step == SQLITE_DONE ? RK_DB_NOT_FOUND : RK_DB_ERROR;
}

/*
 * Whether key is a client key as check results report it: what
 * rk_store_normalize_key leaves as it is, or one of its "h:" hashes.
 */
static bool reported_key(const char *key) {
    size_t n = strlen(key);
    if (n == 34 && !strncmp(key, "h:", 2))
        return strspn(key + 2, "0123456789abcdef") == 32;
    char norm[RK_STORE_KEY_MAX + 1];
    rk_store_normalize_key(key, n, norm);
    return !strcmp(norm, key);
}

static enum MHD_Result reply_db(rk_request_t *req, rk_db_status_t rc) {
    if (rc == RK_DB_NOT_FOUND)
        return rk_reply_error(req, 404, "not_found", "No rule '%.64s'", req->params[0]);
    return rk_reply_error(req, 503, "rules_unavailable",
                          "The rules database did not answer; try again");
}

/* ---- validation ---------------------------------------------------------------------- */

/* The members of an override in an import document that are not its values. */
static const char *const document_members[] = {"rule",       "key",        "created_at",
                                               "updated_at", "updated_by", "expired"};

static bool is_one_of(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, names[i]))
            return true;
    return false;
}

/*
 * Validates an override's values against its rule: the limit, burst and
 * window are checked exactly as the rule's own would be (the rule with them
 * put in must validate), so the algorithm's bounds hold. A change of the
 * rule checks them again (rk_overrides_fit). in_document: doc is an item of
 * an import, which also carries document_members. Fills v (expires_ms
 * whatever its time); answers false with errors appended.
 */
static bool validate_values(const cJSON *doc, const cJSON *rule, bool in_document, values_t *v,
                            cJSON *errors) {
    static const char *const known[] = {"limit",  "burst",      "window_ms",
                                        "window", "expires_at", "note"};
    size_t before = (size_t)cJSON_GetArraySize(errors);
    const cJSON *field;
    cJSON_ArrayForEach(field, doc) {
        if (!is_one_of(field->string, known, RK_ARRAY_LEN(known)) &&
            !(in_document &&
              is_one_of(field->string, document_members, RK_ARRAY_LEN(document_members))))
            rk_rule_error(errors, field->string,
                          "unknown field (an override has limit, burst, window_ms or window, "
                          "expires_at, note)");
    }
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(doc, "limit");
    const cJSON *burst = cJSON_GetObjectItemCaseSensitive(doc, "burst");
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(doc, "window");
    const cJSON *window_ms = cJSON_GetObjectItemCaseSensitive(doc, "window_ms");
    if (!limit)
        rk_rule_error(errors, "limit", "is required");
    bool has_burst = burst && !cJSON_IsNull(burst);
    bool has_window = (window && !cJSON_IsNull(window)) || (window_ms && !cJSON_IsNull(window_ms));

    /* the rule with this client's values must be a valid rule */
    cJSON *merged = rk_override_apply(rule, limit, burst, window, window_ms);
    if (!has_burst) /* the rule's own, if stored where it is ignored, is not this input */
        rk_rule_drop_ignored_burst(merged);
    cJSON *canon = limit ? rk_rule_canonical(merged, errors) : NULL;
    cJSON_Delete(merged);
    if (canon) {
        v->limit = (int64_t)cJSON_GetObjectItemCaseSensitive(canon, "limit")->valuedouble;
        if (has_burst)
            v->burst = (int64_t)cJSON_GetObjectItemCaseSensitive(canon, "burst")->valuedouble;
        if (has_window)
            v->window_ms =
                (int64_t)cJSON_GetObjectItemCaseSensitive(canon, "window_ms")->valuedouble;
        cJSON_Delete(canon);
    }

    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(doc, "expires_at");
    if (expires && !cJSON_IsNull(expires)) {
        v->expires =
            cJSON_IsString(expires) && rk_parse_time(expires->valuestring, &v->expires_ms) == RK_OK;
        if (!v->expires)
            rk_rule_error(errors, "expires_at",
                          "must be an ISO 8601 UTC time such as \"2026-11-22T10:00:00Z\", or "
                          "null");
    }
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(doc, "note");
    v->note = "";
    if (note && !cJSON_IsNull(note)) {
        if (!cJSON_IsString(note) || strlen(note->valuestring) > NOTE_MAX)
            rk_rule_error(errors, "note", "must be a text of at most %d bytes", NOTE_MAX);
        else
            v->note = note->valuestring;
    }
    return (size_t)cJSON_GetArraySize(errors) == before;
}

static void key_error(cJSON *errors, const char *field) {
    rk_rule_error(errors, field,
                  "must be a client key as check results report it (1 to %d printable "
                  "characters without spaces or braces, or its \"h:\" hash)",
                  RK_STORE_KEY_MAX);
}

/* Validates the body of a PUT against the stored rule; fills op. */
static bool validate_put(const cJSON *doc, const cJSON *stored, op_t *op, cJSON *errors) {
    if (!reported_key(op->key))
        key_error(errors, "key");
    validate_values(doc, stored, false, &op->v, errors);
    if (op->v.expires && op->v.expires_ms <= rk_now_ms())
        rk_rule_error(errors, "expires_at", "must be in the future");
    return cJSON_GetArraySize(errors) == 0;
}

/* ---- the operations run by the writer ------------------------------------------------- */

static rk_db_status_t op_list(sqlite3 *conn, void *arg) {
    op_t *op = arg;
    rk_db_status_t rc = rule_exists(conn, op->rule_id);
    sqlite3_stmt *st;
    if (rc != RK_DB_OK)
        return rc;
    if (sqlite3_prepare_v2(conn,
                           "SELECT " OVERRIDE_COLUMNS " FROM rule_overrides WHERE rule_id = ?1 "
                           "ORDER BY key",
                           -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, op->rule_id, -1, SQLITE_STATIC);
    op->out = cJSON_CreateArray();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(op->out, override_json(st));
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? RK_DB_OK : RK_DB_ERROR;
}

static rk_db_status_t op_get(sqlite3 *conn, void *arg) {
    op_t *op = arg;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            conn, "SELECT " OVERRIDE_COLUMNS " FROM rule_overrides WHERE rule_id = ?1 AND key = ?2",
            -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, op->rule_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        op->out = override_json(st);
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? RK_DB_OK : step == SQLITE_DONE ? RK_DB_NOT_FOUND : RK_DB_ERROR;
}

/* The canonical body of the rule as stored now (a new cJSON); NOT_FOUND when none. */
static rk_db_status_t read_rule(sqlite3 *conn, const char *rule_id, cJSON **rule) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "SELECT body FROM rules WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, rule_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *rule = step == SQLITE_ROW ? cJSON_Parse((const char *)sqlite3_column_text(st, 0)) : NULL;
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return RK_DB_NOT_FOUND;
    return *rule ? RK_DB_OK : RK_DB_ERROR;
}

/*
 * Validates the body against the rule and writes the override, both in the
 * writer's transaction: a change of the rule cannot come between them.
 */
static rk_db_status_t op_put(sqlite3 *conn, void *arg) {
    op_t *op = arg;
    cJSON *rule;
    rk_db_status_t rc = read_rule(conn, op->rule_id, &rule);
    if (rc != RK_DB_OK)
        return rc;
    bool valid = validate_put(op->doc, rule, op, op->errors);
    cJSON_Delete(rule);
    if (!valid)
        return RK_DB_INVALID;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            conn,
            "INSERT INTO rule_overrides (" OVERRIDE_COLUMNS ") "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9) ON CONFLICT (rule_id, key) DO UPDATE "
            "SET \"limit\" = ?3, burst = ?4, window_ms = ?5, expires_at = ?6, note = ?7, "
            "updated_at = ?8, updated_by = ?9 RETURNING " OVERRIDE_COLUMNS,
            -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, op->rule_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, op->v.limit);
    if (op->v.burst)
        sqlite3_bind_int64(st, 4, op->v.burst);
    if (op->v.window_ms)
        sqlite3_bind_int64(st, 5, op->v.window_ms);
    if (op->v.expires)
        sqlite3_bind_int64(st, 6, op->v.expires_ms);
    sqlite3_bind_text(st, 7, op->v.note, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, rk_now_ms());
    sqlite3_bind_text(st, 9, op->actor ? op->actor : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        op->out = override_json(st);
    /* RETURNING rows are written when the statement completes */
    if (step == SQLITE_ROW)
        step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        cJSON_Delete(op->out);
        op->out = NULL;
        return RK_DB_ERROR;
    }
    return RK_DB_OK;
}

static rk_db_status_t op_delete(sqlite3 *conn, void *arg) {
    op_t *op = arg;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "DELETE FROM rule_overrides WHERE rule_id = ?1 AND key = ?2", -1,
                           &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, op->rule_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return RK_DB_ERROR;
    return sqlite3_changes(conn) > 0 ? RK_DB_OK : RK_DB_NOT_FOUND;
}

/* ---- handlers ------------------------------------------------------------------------ */

static enum MHD_Result list_overrides(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    op_t op = {.rule_id = req->params[0]};
    rk_db_status_t rc = rk_rules_db_run(db, NULL, NULL, op_list, &op);
    if (rc != RK_DB_OK) {
        cJSON_Delete(op.out);
        return reply_db(req, rc);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "overrides", op.out);
    return rk_reply_json(req, 200, out);
}

/* The override's key of the path, its header names folded as checks write them (into buf). */
static const char *override_key(const rk_request_t *req, char buf[RK_STORE_KEY_MAX + 2]) {
    snprintf(buf, RK_STORE_KEY_MAX + 2, "%s", req->params[1]); /* longer: refused as too long */
    rk_key_fold_header_names(buf);
    return buf;
}

static enum MHD_Result get_override(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    char key[RK_STORE_KEY_MAX + 2];
    op_t op = {.rule_id = req->params[0], .key = override_key(req, key)};
    rk_db_status_t rc = rk_rules_db_run(db, NULL, NULL, op_get, &op);
    if (rc == RK_DB_NOT_FOUND)
        return rk_reply_error(req, 404, "not_found", "Rule '%.64s' has no override for '%.200s'",
                              op.rule_id, op.key);
    if (rc != RK_DB_OK)
        return reply_db(req, rc);
    return rk_reply_json(req, 200, op.out);
}

static enum MHD_Result put_override(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    cJSON *doc = req->body_len ? rk_request_json(req) : NULL;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return rk_reply_bad_json(req, "one JSON object");
    }
    cJSON *errors = cJSON_CreateArray();
    char key[RK_STORE_KEY_MAX + 2];
    op_t op = {.rule_id = req->params[0],
               .key = override_key(req, key),
               .actor = req->actor,
               .doc = doc,
               .errors = errors};
    rk_db_status_t rc = rk_rules_db_run(db, op.rule_id, "override", op_put, &op);
    cJSON_Delete(doc); /* op.note points into it */
    if (rc == RK_DB_INVALID)
        return rk_reply_invalid(req, "invalid_override", "The override is not valid", errors);
    cJSON_Delete(errors);
    if (rc != RK_DB_OK) {
        cJSON_Delete(op.out);
        return reply_db(req, rc);
    }
    return rk_reply_json(req, 200, op.out);
}

static enum MHD_Result delete_override(rk_request_t *req) {
    rk_rules_db_t *db = database(req);
    if (!db)
        return MHD_YES;
    char key[RK_STORE_KEY_MAX + 2];
    op_t op = {.rule_id = req->params[0], .key = override_key(req, key)};
    rk_db_status_t rc = rk_rules_db_run(db, op.rule_id, "override", op_delete, &op);
    if (rc == RK_DB_NOT_FOUND)
        return rk_reply_error(req, 404, "not_found", "Rule '%.64s' has no override for '%.200s'",
                              op.rule_id, op.key);
    if (rc != RK_DB_OK)
        return reply_db(req, rc);
    return rk_reply_empty(req, 204);
}

/* ---- in the rules' export and import --------------------------------------------------- */

typedef struct {
    const cJSON *rule; /* the export's rules, sorted by id: the first not passed yet */
    cJSON *out;
    int64_t version;
} export_t;

/* Whether the export has a rule of this id; ids come in order (strcmp, as SQLite's BINARY). */
static bool export_has_rule(export_t *ex, const char *id) {
    int c = -1;
    while (ex->rule &&
           (c = strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ex->rule, "id")),
                       id)) < 0)
        ex->rule = ex->rule->next;
    return ex->rule && c == 0;
}

/* The overrides not expired, and the ruleset version, in one read transaction. */
static rk_db_status_t read_export(sqlite3 *conn, export_t *ex) {
    sqlite3_stmt *st;
    ex->version = rk_rules_db_read_version(conn);
    if (ex->version < 0 ||
        sqlite3_prepare_v2(conn,
                           "SELECT " OVERRIDE_COLUMNS " FROM rule_overrides WHERE expires_at IS "
                           "NULL OR expires_at > ?1 ORDER BY rule_id, key",
                           -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_int64(st, 1, rk_now_ms());
    ex->out = cJSON_CreateArray();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (export_has_rule(ex, (const char *)sqlite3_column_text(st, 0)))
            cJSON_AddItemToArray(ex->out, override_json(st));
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? RK_DB_OK : RK_DB_ERROR;
}

static rk_db_status_t op_export(sqlite3 *conn, void *arg) {
    if (sqlite3_exec(conn, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    rk_db_status_t rc = read_export(conn, arg);
    sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL);
    return rc;
}

cJSON *rk_overrides_for_export(rk_rules_db_t *db, const cJSON *rules, int64_t *version) {
    export_t ex = {.rule = rules ? rules->child : NULL};
    if (rk_rules_db_run(db, NULL, NULL, op_export, &ex) == RK_DB_OK) {
        *version = ex.version;
        return ex.out;
    }
    cJSON_Delete(ex.out);
    return NULL;
}

/* An import's rules by id, for a binary search. */
typedef struct {
    const cJSON **rule;
    size_t n;
} rule_index_t;

static const char *rule_id_of(const cJSON *rule) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rule, "id"));
}

static int by_id(const void *a, const void *b) {
    return strcmp(rule_id_of(*(const cJSON *const *)a), rule_id_of(*(const cJSON *const *)b));
}

/* Indexes rules (canonical: each has an id); false when out of memory. */
static bool index_rules(const cJSON *rules, rule_index_t *ix) {
    int n = cJSON_GetArraySize(rules);
    ix->n = 0;
    ix->rule = malloc((n > 0 ? (size_t)n : 1) * sizeof *ix->rule);
    if (!ix->rule)
        return false;
    const cJSON *r;
    cJSON_ArrayForEach(r, rules) {
        ix->rule[ix->n++] = r;
    }
    qsort(ix->rule, ix->n, sizeof *ix->rule, by_id);
    return true;
}

/* The import's rule of this id, or NULL. */
static const cJSON *document_rule(const rule_index_t *ix, const char *id) {
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rule_id_of(ix->rule[mid]), id);
        if (c == 0)
            return ix->rule[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * One override of an import as a row for rk_overrides_import, NULL when it
 * is not valid (problems appended, fields as in a PUT) or has expired
 * (*expired set).
 */
static cJSON *document_row(const cJSON *item, const rule_index_t *rules, int64_t now_ms,
                           cJSON *problems, bool *expired) {
    if (!cJSON_IsObject(item)) {
        rk_rule_error(problems, "", "must be an object with rule, key and limit");
        return NULL;
    }
    const char *rule_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "rule"));
    const cJSON *rule = rule_id ? document_rule(rules, rule_id) : NULL;
    if (!rule)
        rk_rule_error(problems, "rule", "must name a rule of the document");
    const char *given =
        rk_json_text(cJSON_GetObjectItemCaseSensitive(item, "key"), RK_STORE_KEY_MAX);
    char key[RK_STORE_KEY_MAX + 1] = "";
    if (given) {
        snprintf(key, sizeof key, "%s", given);
        rk_key_fold_header_names(key); /* as a PUT's path */
    }
    bool key_ok = given && reported_key(key);
    if (!key_ok)
        key_error(problems, "key");
    values_t v = {0};
    if (!rule || !validate_values(item, rule, true, &v, problems) || !key_ok)
        return NULL;
    if (v.expires && v.expires_ms <= now_ms) {
        *expired = true;
        return NULL;
    }
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "rule", rule_id);
    cJSON_AddStringToObject(row, "key", key);
    cJSON_AddNumberToObject(row, "limit", (double)v.limit);
    const int64_t optional[] = {v.burst, v.window_ms, v.expires_ms};
    const bool present[] = {v.burst != 0, v.window_ms != 0, v.expires};
    const char *const names[] = {"burst", "window_ms", "expires_at"};
    for (int k = 0; k < 3; k++) {
        if (present[k])
            cJSON_AddNumberToObject(row, names[k], (double)optional[k]);
        else
            cJSON_AddNullToObject(row, names[k]);
    }
    cJSON_AddStringToObject(row, "note", v.note);
    return row;
}

/* A row of the document and its place in it. */
typedef struct {
    cJSON *row;
    int index;
} placed_row_t;

static int row_cmp(const cJSON *a, const cJSON *b) {
    int c = strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "rule")),
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "rule")));
    return c ? c
             : strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "key")),
                      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "key")));
}

/* By rule, then key, then place: the first of a pair given twice stays. */
static int by_rule_key_place(const void *a, const void *b) {
    const placed_row_t *x = a, *y = b;
    int c = row_cmp(x->row, y->row);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Sorts the rows by rule then key, refusing a (rule, key) given twice; a new array. */
static cJSON *sorted_rows(placed_row_t *placed, int count, cJSON *errors) {
    qsort(placed, (size_t)count, sizeof *placed, by_rule_key_place);
    cJSON *rows = cJSON_CreateArray();
    int kept = -1; /* the last row kept */
    for (int k = 0; k < count; k++) {
        if (kept >= 0 && row_cmp(placed[kept].row, placed[k].row) == 0) {
            char name[48];
            snprintf(name, sizeof name, "overrides[%d].key", placed[k].index);
            rk_rule_error(errors, name, "overrides[%d] is for the same rule and key already",
                          placed[kept].index);
            cJSON_Delete(placed[k].row);
        } else {
            cJSON_AddItemToArray(rows, placed[k].row);
            kept = k;
        }
    }
    return rows;
}

cJSON *rk_overrides_from_document(const cJSON *list, const cJSON *rules, int64_t now_ms,
                                  cJSON *errors, int *expired) {
    *expired = 0;
    if (!cJSON_IsArray(list)) {
        rk_rule_error(errors, "overrides",
                      "must be an array of overrides (as answered by the export)");
        return NULL;
    }
    int n = cJSON_GetArraySize(list), count = 0, i = 0;
    placed_row_t *placed = calloc(n > 0 ? (size_t)n : 1, sizeof *placed);
    rule_index_t ix = {0};
    if (!placed || !index_rules(rules, &ix)) {
        free(placed);
        rk_rule_error(errors, "overrides", "are too many to read here");
        return NULL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        cJSON *problems = cJSON_CreateArray();
        bool gone = false;
        cJSON *row = document_row(item, &ix, now_ms, problems, &gone);
        rk_rule_errors_of_item(errors, "overrides", i, problems);
        cJSON_Delete(problems);
        if (row)
            placed[count++] = (placed_row_t){row, i};
        *expired += gone;
        i++;
    }
    cJSON *rows = sorted_rows(placed, count, errors);
    free(placed);
    free(ix.rule);
    if (cJSON_GetArraySize(errors) > 0) {
        cJSON_Delete(rows);
        return NULL;
    }
    return rows;
}
/* {key*}: a client key may hold '/' (URL-encoded), so it takes the rest of the path. */
const rk_route_t rk_overrides_routes[] = {
    {"GET", "/api/v1/rules/{id}/overrides", list_overrides, RK_ROLE_VIEWER, false},
    {"GET", "/api/v1/rules/{id}/overrides/{key*}", get_override, RK_ROLE_VIEWER, false},
    {"PUT", "/api/v1/rules/{id}/overrides/{key*}", put_override, RK_ROLE_EDITOR, true},
    {"DELETE", "/api/v1/rules/{id}/overrides/{key*}", delete_override, RK_ROLE_EDITOR, true},
};
const size_t rk_overrides_routes_len = RK_ARRAY_LEN(rk_overrides_routes);
