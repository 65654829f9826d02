/*
 * overrides_db.c — the per-key overrides as a whole, for instances that
 * share only Redis (sync.c): every row as stored, and the table made
 * exactly a given set, alone or inside a rules' import. The admin API (http/overrides_api.c)
 * changes them one at a time. Also the bounds of an override, which are its rule's: checked when it
 * is put and again whenever its rule changes.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rule.h"
#include "rules_db.h"

#define COLUMNS                                                                                    \
    "rule_id, key, \"limit\", burst, window_ms, expires_at, note, created_at, updated_at, "        \
    "updated_by"
#define TEXT_MAX 1024 /* no stored field is longer (ids, keys, notes, actors) */

/* The integer fields of a row, in column order after rule_id and key; those that may be NULL. */
static const char *const int_fields[] = {"limit", "burst", "window_ms", "expires_at"};
static const bool int_nullable[] = {false, true, true, true};

static void add_int_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, col));
}

static rk_db_status_t export_rows(sqlite3 *conn, void *ctx) {
    cJSON *out = ctx;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "SELECT " COLUMNS " FROM rule_overrides ORDER BY rule_id, key", -1,
                           &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "rule", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(o, "key", (const char *)sqlite3_column_text(st, 1));
        for (int i = 0; i < 4; i++)
            add_int_or_null(o, int_fields[i], st, 2 + i);
        cJSON_AddStringToObject(o, "note", (const char *)sqlite3_column_text(st, 6));
        cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(st, 7));
        cJSON_AddNumberToObject(o, "updated_at", (double)sqlite3_column_int64(st, 8));
        cJSON_AddStringToObject(o, "updated_by", (const char *)sqlite3_column_text(st, 9));
        cJSON_AddItemToArray(out, o);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? RK_DB_OK : RK_DB_ERROR;
}

cJSON *rk_overrides_export(rk_rules_db_t *db) {
    cJSON *rows = cJSON_CreateArray();
    if (rows && rk_rules_db_run(db, NULL, NULL, export_rows, rows) == RK_DB_OK)
        return rows;
    cJSON_Delete(rows);
    return NULL;
}

static bool text_field(const cJSON *row, const char *name, bool non_empty) {
    const char *t = rk_json_text(cJSON_GetObjectItemCaseSensitive(row, name), TEXT_MAX);
    return t && (!non_empty || t[0]);
}

/* An integer of the row, at least min (or null when nullable). */
static bool int_field(const cJSON *row, const char *name, bool nullable, int64_t min) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
    return (nullable && cJSON_IsNull(v)) || rk_json_whole(v, min);
}

bool rk_overrides_row_valid(const cJSON *row) {
    if (!cJSON_IsObject(row) || !text_field(row, "rule", true) || !text_field(row, "key", true) ||
        !text_field(row, "note", false) || !text_field(row, "updated_by", false) ||
        !int_field(row, "created_at", false, 0) || !int_field(row, "updated_at", false, 0))
        return false;
    for (int i = 0; i < 4; i++)
        if (!int_field(row, int_fields[i], int_nullable[i], 1))
            return false;
    return true;
}

static void bind_int_or_null(sqlite3_stmt *st, int col, const cJSON *v) {
    if (cJSON_IsNumber(v))
        sqlite3_bind_int64(st, col, (int64_t)v->valuedouble);
    else
        sqlite3_bind_null(st, col);
}

static const char *text(const cJSON *row, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(row, name)->valuestring;
}

/* Replaces every row (inside rk_rules_db_run's transaction); rows of unknown rules are left out. */
static rk_db_status_t replace_rows(sqlite3 *conn, void *ctx) {
    const cJSON *rows = ctx;
    if (sqlite3_exec(conn, "DELETE FROM rule_overrides", NULL, NULL, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn,
                           "INSERT OR REPLACE INTO rule_overrides (" COLUMNS ") SELECT ?1, ?2, ?3, "
                           "?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE EXISTS (SELECT 1 FROM rules WHERE "
                           "id = ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    const cJSON *row;
    rk_db_status_t rc = RK_DB_OK;
    cJSON_ArrayForEach(row, rows) {
        sqlite3_bind_text(st, 1, text(row, "rule"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text(row, "key"), -1, SQLITE_STATIC);
        for (int i = 0; i < 4; i++)
            bind_int_or_null(st, 3 + i, cJSON_GetObjectItemCaseSensitive(row, int_fields[i]));
        sqlite3_bind_text(st, 7, text(row, "note"), -1, SQLITE_STATIC);
        bind_int_or_null(st, 8, cJSON_GetObjectItemCaseSensitive(row, "created_at"));
        bind_int_or_null(st, 9, cJSON_GetObjectItemCaseSensitive(row, "updated_at"));
        sqlite3_bind_text(st, 10, text(row, "updated_by"), -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        if (step != SQLITE_DONE) {
            rc = RK_DB_ERROR;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

rk_db_status_t rk_overrides_replace(rk_rules_db_t *db, const cJSON *valid, bool *changed) {
    *changed = false;
    cJSON *current = rk_overrides_export(db);
    rk_db_status_t rc = RK_DB_ERROR;
    if (current && cJSON_Compare(current, valid, true)) {
        rc = RK_DB_OK; /* already so: no new ruleset version */
    } else if (current) {
        rc = rk_rules_db_run(db, NULL, "override", replace_rows, (void *)valid); /* read only */
        *changed = rc == RK_DB_OK;
    }
    cJSON_Delete(current);
    return rc;
}

/* ---- an import's overrides -------------------------------------------------------- */

/* Whether the row's (rule, key) comes before, is, or comes after (rule_id, key). */
static int row_order(const cJSON *row, const char *rule_id, const char *key) {
    int c = strcmp(text(row, "rule"), rule_id);
    return c ? c : strcmp(text(row, "key"), key);
}

/*
 * Upserts one row of the document with st (see rk_overrides_import): a new
 * or changed row is written, an unchanged one left alone. replaces_live:
 * a live override of that rule and key is stored (a change, not a creation).
 */
static rk_db_status_t import_row(sqlite3 *conn, sqlite3_stmt *st, const cJSON *row,
                                 bool replaces_live, rk_override_counts_t *n) {
    sqlite3_bind_text(st, 1, text(row, "rule"), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text(row, "key"), -1, SQLITE_STATIC);
    for (int i = 0; i < 4; i++)
        bind_int_or_null(st, 3 + i, cJSON_GetObjectItemCaseSensitive(row, int_fields[i]));
    sqlite3_bind_text(st, 7, text(row, "note"), -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        return RK_DB_ERROR;
    if (sqlite3_changes(conn) > 0) {
        if (replaces_live)
            n->updated++;
        else
            n->created++;
    }
    return RK_DB_OK;
}

/*
 * Walks the stored overrides and rows together in (rule, key) order: answers
 * the stored ones rows does not name (a new array of {rule, key, live}), and
 * sets live[i] when row i names a stored override that has not expired.
 * NULL when SQLite fails.
 */
static cJSON *compare_rows(sqlite3 *conn, const cJSON *rows, int64_t now_ms, bool *live) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn,
                           "SELECT rule_id, key, expires_at IS NULL OR expires_at > ?1 FROM "
                           "rule_overrides ORDER BY rule_id, key",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(st, 1, now_ms);
    cJSON *absent = cJSON_CreateArray();
    const cJSON *next = rows ? rows->child : NULL;
    int i = 0; /* next's place */
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *rule_id = (const char *)sqlite3_column_text(st, 0);
        const char *key = (const char *)sqlite3_column_text(st, 1);
        bool is_live = sqlite3_column_int(st, 2);
        for (; next && row_order(next, rule_id, key) < 0; i++)
            next = next->next;
        if (next && row_order(next, rule_id, key) == 0) {
            live[i] = is_live;
            continue;
        }
        cJSON *gone = cJSON_CreateObject();
        cJSON_AddStringToObject(gone, "rule", rule_id);
        cJSON_AddStringToObject(gone, "key", key);
        cJSON_AddBoolToObject(gone, "live", is_live);
        cJSON_AddItemToArray(absent, gone);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        cJSON_Delete(absent);
        return NULL;
    }
    return absent;
}

static rk_db_status_t delete_rows(sqlite3 *conn, const cJSON *gone, rk_override_counts_t *n) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "DELETE FROM rule_overrides WHERE rule_id = ?1 AND key = ?2", -1,
                           &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    rk_db_status_t rc = RK_DB_OK;
    const cJSON *row;
    cJSON_ArrayForEach(row, gone) {
        sqlite3_bind_text(st, 1, text(row, "rule"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text(row, "key"), -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        if (step != SQLITE_DONE) {
            rc = RK_DB_ERROR;
            break;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "live")))
            n->deleted++; /* an expired one going changes nothing that applies */
    }
    sqlite3_finalize(st);
    return rc;
}

/* Upserts every row; live[i]: row i replaces a live override. */
static rk_db_status_t upsert_rows(sqlite3 *conn, const cJSON *rows, const bool *live,
                                  const char *actor, int64_t now_ms, rk_override_counts_t *n) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            conn,
            "INSERT INTO rule_overrides (" COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, "
            "?9) ON CONFLICT (rule_id, key) DO UPDATE SET \"limit\" = ?3, burst = ?4, "
            "window_ms = ?5, expires_at = ?6, note = ?7, updated_at = ?8, updated_by = ?9 "
            "WHERE \"limit\" IS NOT ?3 OR burst IS NOT ?4 OR window_ms IS NOT ?5 OR "
            "expires_at IS NOT ?6 OR note IS NOT ?7",
            -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_int64(st, 8, now_ms);
    sqlite3_bind_text(st, 9, actor ? actor : "", -1, SQLITE_STATIC);
    rk_db_status_t rc = RK_DB_OK;
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if ((rc = import_row(conn, st, row, live[i++], n)) != RK_DB_OK)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

rk_db_status_t rk_overrides_import(sqlite3 *conn, const cJSON *rows, const char *actor,
                                   int64_t now_ms, rk_override_counts_t *n) {
    memset(n, 0, sizeof *n);
    int count = cJSON_GetArraySize(rows);
    bool *live = calloc(count > 0 ? (size_t)count : 1, sizeof *live);
    cJSON *gone = live ? compare_rows(conn, rows, now_ms, live) : NULL;
    rk_db_status_t rc = gone ? delete_rows(conn, gone, n) : RK_DB_ERROR;
    if (rc == RK_DB_OK)
        rc = upsert_rows(conn, rows, live, actor, now_ms, n);
    cJSON_Delete(gone);
    free(live);
    return rc;
}

/* ---- bounds ------------------------------------------------------------------------ */

static bool given(const cJSON *v) {
    return v && !cJSON_IsNull(v);
}

static void put_copy(cJSON *obj, const char *name, const cJSON *v) {
    cJSON_AddItemToObject(obj, name, cJSON_Duplicate(v, true));
}

cJSON *rk_override_apply(const cJSON *rule, const cJSON *limit, const cJSON *burst,
                         const cJSON *window, const cJSON *window_ms) {
    cJSON *merged = cJSON_Duplicate(rule, true);
    if (!merged)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(merged, "limit");
    if (limit)
        put_copy(merged, "limit", limit);
    if (given(burst)) {
        cJSON_DeleteItemFromObjectCaseSensitive(merged, "burst");
        put_copy(merged, "burst", burst);
    }
    if (given(window) || given(window_ms)) {
        cJSON_DeleteItemFromObjectCaseSensitive(merged, "window");
        cJSON_DeleteItemFromObjectCaseSensitive(merged, "window_ms");
        if (given(window))
            put_copy(merged, "window", window);
        if (given(window_ms))
            put_copy(merged, "window_ms", window_ms);
    }
    return merged;
}

/* An integer column as a JSON number, or NULL when the column is NULL. */
static cJSON *number_column(sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    return cJSON_CreateNumber((double)sqlite3_column_int64(st, col));
}

/*
 * Checks the override of the current row (key, limit, burst, window_ms)
 * against canon; appends its misfits to errors. False when it does not fit.
 */
static bool row_fits(sqlite3_stmt *st, const cJSON *canon, const char *prefix, cJSON *errors) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    cJSON *limit = number_column(st, 1), *burst = number_column(st, 2);
    cJSON *window_ms = number_column(st, 3);
    cJSON *merged = rk_override_apply(canon, limit, burst, NULL, window_ms);
    /* a stored override keeps working: its burst, stored before it was refused
     * where ignored (or ignored since the rule's algorithm changed), is no misfit */
    rk_rule_drop_ignored_burst(merged);
    cJSON *problems = cJSON_CreateArray();
    cJSON *valid = merged ? rk_rule_canonical(merged, problems) : NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, problems) {
        char field[400];
        snprintf(field, sizeof field, "%soverrides.%.300s.%.32s", prefix, key,
                 cJSON_GetObjectItemCaseSensitive(p, "field")->valuestring);
        rk_rule_error(errors, field,
                      "%.160s (this client's override no longer fits the rule: change or "
                      "delete it first)",
                      cJSON_GetObjectItemCaseSensitive(p, "message")->valuestring);
    }
    bool fits = valid != NULL;
    cJSON_Delete(valid);
    cJSON_Delete(problems);
    cJSON_Delete(merged);
    cJSON_Delete(limit);
    cJSON_Delete(burst);
    cJSON_Delete(window_ms);
    return fits;
}

rk_db_status_t rk_overrides_fit(sqlite3 *conn, const cJSON *canon, int64_t now_ms,
                                const char *prefix, cJSON *errors) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(canon, "id");
    sqlite3_stmt *st;
    if (!cJSON_IsString(id) ||
        sqlite3_prepare_v2(conn,
                           "SELECT key, \"limit\", burst, window_ms FROM rule_overrides "
                           "WHERE rule_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) "
                           "ORDER BY key",
                           -1, &st, NULL) != SQLITE_OK)
        return RK_DB_ERROR;
    sqlite3_bind_text(st, 1, id->valuestring, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    bool all_fit = true;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        all_fit = row_fits(st, canon, prefix, errors) && all_fit;
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return RK_DB_ERROR;
    return all_fit ? RK_DB_OK : RK_DB_INVALID;
}
