/*
 * rules_db.c — see rules_db.h.
 *
 * Layout (schema/001_init.sql): rules(id, body, version, created_at,
 * updated_at), rule_history(rule_id, version, actor, at, action, before,
 * after, ruleset_version), meta('ruleset_version'). Times are epoch ms in
 * the tables and ISO 8601 UTC in the JSON.
 *
 * A rule's version counts the changes of its id across its whole history,
 * deletions included, so that (rule_id, version) names one history entry
 * even when an id is deleted and created again.
 */
#include "rules_db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/tokens.h" /* RK_ACTOR_SYNC */
#include "../log.h"
#include "rule.h"

extern const char *const rk_schema_sql[];
extern const size_t rk_schema_sql_len;

struct rk_rules_db {
    sqlite3 *conn;
    pthread_mutex_t lock; /* one writer (and reader) at a time on conn */
    rk_rules_db_commit_fn on_commit;
    void *on_commit_ctx;
};

/* ---- connections and migrations -------------------------------------------------- */

int rk_rules_db_schema_version(void) {
    return (int)rk_schema_sql_len;
}

/* Runs a statement that answers one integer (a PRAGMA, a SELECT); -1 on error. */
static int64_t query_int(sqlite3 *conn, const char *sql) {
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Applies the migrations the file lacks, each in its own transaction. */
static rk_status_t migrate(sqlite3 *conn, char *err, size_t errlen) {
    int known = rk_rules_db_schema_version();
    int64_t have = query_int(conn, "PRAGMA user_version");
    if (have > known) {
        snprintf(err, errlen,
                 "the database has schema version %lld, newer than this ratekitd knows (%d); "
                 "run a newer ratekitd or restore a backup",
                 (long long)have, known);
        return RK_ERR;
    }
    while (have < known) {
        char *msg = NULL;
        if (sqlite3_exec(conn, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
            goto failed;
        /* another process may have migrated while this one waited for the lock */
        have = query_int(conn, "PRAGMA user_version");
        if (have < 0 || have > known) {
            sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
            snprintf(err, errlen, "cannot read the schema version");
            return RK_ERR;
        }
        if (have == known) {
            sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL);
            break;
        }
        char set_version[64];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %lld",
                 (long long)have + 1);
        if (sqlite3_exec(conn, rk_schema_sql[have], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(conn, set_version, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(conn, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
            snprintf(err, errlen, "migration %lld failed: %s", (long long)have + 1,
                     msg ? msg : sqlite3_errmsg(conn));
            sqlite3_free(msg);
            return RK_ERR;
        }
        have++;
        continue;
    failed:
        snprintf(err, errlen, "cannot start a migration: %s", msg ? msg : sqlite3_errmsg(conn));
        sqlite3_free(msg);
        return RK_ERR;
    }
    return RK_OK;
}

sqlite3 *rk_rules_db_connect(const char *path, bool migrate_schema, char *err, size_t errlen) {
    sqlite3 *conn = NULL;
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (migrate_schema ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &conn, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open: %s", conn ? sqlite3_errmsg(conn) : "out of memory");
        sqlite3_close(conn);
        return NULL;
    }
    sqlite3_busy_timeout(conn, 5000);
    char *msg = NULL;
    if (sqlite3_exec(conn, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", NULL, NULL,
                     &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(conn));
        goto fail;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(conn));
        goto fail;
    }
    bool wal = sqlite3_step(st) == SQLITE_ROW &&
               !sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    if (!wal) {
        snprintf(err, errlen, "cannot switch to WAL journal mode: %s", sqlite3_errmsg(conn));
        goto fail;
    }
    if (migrate_schema && migrate(conn, err, errlen) != RK_OK)
        goto fail;
    return conn;
fail:
    sqlite3_free(msg);
    sqlite3_close(conn);
    return NULL;
}

int64_t rk_rules_db_data_version(sqlite3 *conn) {
    return query_int(conn, "PRAGMA data_version");
}

int64_t rk_rules_db_read_version(sqlite3 *conn) {
    return query_int(conn, "SELECT value FROM meta WHERE key = 'ruleset_version'");
}

int64_t rk_rules_db_meta_get(rk_rules_db_t *db, const char *key, int64_t absent) {
    pthread_mutex_lock(&db->lock);
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db->conn, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        v = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : step == SQLITE_DONE ? absent : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    return v;
}

rk_status_t rk_rules_db_meta_set(rk_rules_db_t *db, const char *key, int64_t value) {
    pthread_mutex_lock(&db->lock);
    sqlite3_stmt *st;
    int step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(db->conn,
                           "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, value);
        step = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    return step == SQLITE_DONE ? RK_OK : RK_ERR;
}

rk_status_t rk_rules_db_sync_base_set(rk_rules_db_t *db, const char *body) {
    pthread_mutex_lock(&db->lock);
    sqlite3_stmt *st;
    int step = SQLITE_ERROR;
    const char *sql = body ? "INSERT INTO sync_base (id, body) VALUES (1, ?1) "
                             "ON CONFLICT (id) DO UPDATE SET body = excluded.body"
                           : "DELETE FROM sync_base";
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) == SQLITE_OK) {
        if (body)
            sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
        step = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    return step == SQLITE_DONE ? RK_OK : RK_ERR;
}

char *rk_rules_db_sync_base_get(rk_rules_db_t *db) {
    pthread_mutex_lock(&db->lock);
    sqlite3_stmt *st;
    char *body = NULL;
    if (sqlite3_prepare_v2(db->conn, "SELECT body FROM sync_base WHERE id = 1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        body = text ? strdup(text) : NULL;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    return body;
}

rk_status_t rk_rules_db_load(sqlite3 *conn,
                             rk_status_t (*row)(void *ctx, const char *body, int64_t version),
                             void *ctx, int64_t *ruleset_version) {
    if (sqlite3_exec(conn, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return RK_ERR;
    rk_status_t rc = RK_ERR;
    sqlite3_stmt *st = NULL;
    int64_t v = rk_rules_db_read_version(conn);
    if (v < 0 || sqlite3_prepare_v2(conn, "SELECT body, version FROM rules", -1, &st, NULL))
        goto done;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (row(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1)))
            goto done;
    }
    if (step != SQLITE_DONE)
        goto done;
    *ruleset_version = v;
    rc = RK_OK;
done:
    sqlite3_finalize(st);
    sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------- */

rk_rules_db_t *rk_rules_db_open(const char *path, char *err, size_t errlen) {
    sqlite3 *conn = rk_rules_db_connect(path, true, err, errlen);
    if (!conn)
        return NULL;
    rk_rules_db_t *db = calloc(1, sizeof *db);
    if (!db) {
        sqlite3_close(conn);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->conn = conn;
    pthread_mutex_init(&db->lock, NULL);
    return db;
}

void rk_rules_db_close(rk_rules_db_t *db) {
    if (!db)
        return;
    sqlite3_close(db->conn);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

void rk_rules_db_on_commit(rk_rules_db_t *db, rk_rules_db_commit_fn fn, void *ctx) {
    pthread_mutex_lock(&db->lock);
    db->on_commit = fn;
    db->on_commit_ctx = ctx;
    pthread_mutex_unlock(&db->lock);
}

sqlite3 *rk_rules_db_conn(rk_rules_db_t *db) {
    return db->conn;
}

static rk_db_status_t sql_failed(rk_rules_db_t *db, const char *what) {
    rk_error("rules database: %s: %s", what, sqlite3_errmsg(db->conn));
    return RK_DB_ERROR;
}

/* ---- JSON of stored rules ------------------------------------------------------------ */

/* The stored rule: the canonical body plus version and ISO timestamps (new cJSON). */
static cJSON *stored_rule(const char *body, int64_t version, int64_t created_ms,
                          int64_t updated_ms) {
    cJSON *rule = cJSON_Parse(body);
    if (!rule)
        return NULL;
    char at[32];
    cJSON_AddNumberToObject(rule, "version", (double)version);
    rk_format_time(created_ms, at);
    cJSON_AddStringToObject(rule, "created_at", at);
    rk_format_time(updated_ms, at);
    cJSON_AddStringToObject(rule, "updated_at", at);
    return rule;
}

/* The current row of a rule; NOT_FOUND when absent. *body is malloc'ed. */
typedef struct {
    char *body;
    int64_t version, created_ms, updated_ms;
} rule_row_t;

static rk_db_status_t read_row(rk_rules_db_t *db, const char *id, rule_row_t *row) {
    memset(row, 0, sizeof *row);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT body, version, created_at, updated_at FROM rules WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_failed(db, "read a rule");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    rk_db_status_t rc = RK_DB_NOT_FOUND;
    if (step == SQLITE_ROW) {
        row->body = strdup((const char *)sqlite3_column_text(st, 0));
        row->version = sqlite3_column_int64(st, 1);
        row->created_ms = sqlite3_column_int64(st, 2);
        row->updated_ms = sqlite3_column_int64(st, 3);
        rc = row->body ? RK_DB_OK : RK_DB_ERROR;
    } else if (step != SQLITE_DONE) {
        rc = sql_failed(db, "read a rule");
    }
    sqlite3_finalize(st);
    return rc;
}

rk_db_status_t rk_rules_db_get(rk_rules_db_t *db, const char *id, cJSON **out) {
    pthread_mutex_lock(&db->lock);
    rule_row_t row;
    rk_db_status_t rc = read_row(db, id, &row);
    pthread_mutex_unlock(&db->lock);
    if (rc == RK_DB_OK) {
        *out = stored_rule(row.body, row.version, row.created_ms, row.updated_ms);
        if (!*out)
            rc = RK_DB_ERROR;
    }
    free(row.body);
    return rc;
}

rk_db_status_t rk_rules_db_list(rk_rules_db_t *db, cJSON **rules, int64_t *version) {
    cJSON *list = cJSON_CreateArray();
    rk_db_status_t rc = RK_DB_OK;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&db->lock);
    if (sqlite3_exec(db->conn, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_failed(db, "list rules");
        goto done;
    }
    *version = rk_rules_db_read_version(db->conn);
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT body, version, created_at, updated_at FROM rules ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_failed(db, "list rules");
    } else {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            cJSON *r =
                stored_rule((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
            if (r)
                cJSON_AddItemToArray(list, r);
        }
        if (step != SQLITE_DONE)
            rc = sql_failed(db, "list rules");
    }
    sqlite3_finalize(st);
    sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
done:
    pthread_mutex_unlock(&db->lock);
    if (rc != RK_DB_OK || *version < 0) {
        cJSON_Delete(list);
        return RK_DB_ERROR;
    }
    *rules = list;
    return RK_DB_OK;
}

/* A column of JSON text as cJSON, or a JSON null when the column is NULL. */
static cJSON *json_column(sqlite3_stmt *st, int col) {
    const char *text = (const char *)sqlite3_column_text(st, col);
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    return v ? v : cJSON_CreateNull();
}

rk_db_status_t rk_rules_db_history(rk_rules_db_t *db, const char *id, cJSON **out) {
    cJSON *list = cJSON_CreateArray();
    rk_db_status_t rc = RK_DB_OK;
    sqlite3_stmt *st;
    pthread_mutex_lock(&db->lock);
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT version, actor, at, action, before, after FROM rule_history "
                           "WHERE rule_id = ? ORDER BY version DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_failed(db, "read history");
    } else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            cJSON *e = cJSON_CreateObject();
            char at[32];
            rk_format_time(sqlite3_column_int64(st, 2), at);
            cJSON_AddNumberToObject(e, "version", (double)sqlite3_column_int64(st, 0));
            cJSON_AddStringToObject(e, "actor", (const char *)sqlite3_column_text(st, 1));
            cJSON_AddStringToObject(e, "at", at);
            cJSON_AddStringToObject(e, "action", (const char *)sqlite3_column_text(st, 3));
            cJSON_AddItemToObject(e, "before", json_column(st, 4));
            cJSON_AddItemToObject(e, "after", json_column(st, 5));
            cJSON_AddItemToArray(list, e);
        }
        if (step != SQLITE_DONE)
            rc = sql_failed(db, "read history");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&db->lock);
    if (rc == RK_DB_OK && cJSON_GetArraySize(list) == 0)
        rc = RK_DB_NOT_FOUND;
    if (rc != RK_DB_OK) {
        cJSON_Delete(list);
        return rc;
    }
    *out = list;
    return RK_DB_OK;
}

/* ---- changes --------------------------------------------------------------------------- */

static rk_db_status_t begin(rk_rules_db_t *db) {
    if (sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_failed(db, "begin a change");
    return RK_DB_OK;
}

static rk_db_status_t commit(rk_rules_db_t *db) {
    if (sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rk_db_status_t rc = sql_failed(db, "commit a change");
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return RK_DB_OK;
}

static void rollback(rk_rules_db_t *db) {
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
}

/* Bumps the ruleset version inside the open transaction; the new value or -1. */
static int64_t bump_ruleset_version(rk_rules_db_t *db) {
    return query_int(db->conn, "UPDATE meta SET value = value + 1 WHERE key = 'ruleset_version' "
                               "RETURNING value");
}

/* The highest version the id ever had (0 for a new id); -1 on error. */
static int64_t last_version(rk_rules_db_t *db, const char *id) {
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT coalesce(max(version), 0) FROM rule_history WHERE rule_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs one prepared write with its text/int64 arguments bound by the caller. */
static rk_db_status_t step_done(rk_rules_db_t *db, sqlite3_stmt *st, const char *what) {
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? RK_DB_OK : sql_failed(db, what);
}

/*
 * Writes one change of rule `id` inside the open transaction: canon is the
 * new canonical body, or NULL to delete. Appends the history entry (before
 * and after as stored rules) under ruleset version rsv at now_ms. *stored,
 * if asked for, receives the rule after the change.
 */
static rk_db_status_t write_change(rk_rules_db_t *db, const char *id, const cJSON *canon,
                                   const char *action, const char *actor, int64_t rsv,
                                   int64_t now_ms, cJSON **stored) {
    rule_row_t cur;
    rk_db_status_t rc = read_row(db, id, &cur);
    if (rc == RK_DB_ERROR)
        return rc;
    bool exists = rc == RK_DB_OK;
    int64_t version = last_version(db, id);
    if (version < 0) {
        free(cur.body);
        return sql_failed(db, "read history");
    }
    if (exists && cur.version > version)
        version = cur.version;
    version++;

    char *before = NULL, *after = NULL, *body = NULL;
    cJSON *after_json = NULL;
    if (exists) {
        cJSON *b = stored_rule(cur.body, cur.version, cur.created_ms, cur.updated_ms);
        before = b ? cJSON_PrintUnformatted(b) : NULL;
        cJSON_Delete(b);
    }
    sqlite3_stmt *st = NULL;
    if (canon) {
        body = cJSON_PrintUnformatted(canon);
        after_json =
            body ? stored_rule(body, version, exists ? cur.created_ms : now_ms, now_ms) : NULL;
        after = after_json ? cJSON_PrintUnformatted(after_json) : NULL;
        if (!after) {
            rc = RK_DB_ERROR;
            goto done;
        }
        if (sqlite3_prepare_v2(db->conn,
                               "INSERT INTO rules (id, body, version, created_at, updated_at) "
                               "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO UPDATE SET "
                               "body = ?2, version = ?3, updated_at = ?4",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = sql_failed(db, "write a rule");
            goto done;
        }
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, version);
        sqlite3_bind_int64(st, 4, now_ms);
    } else {
        if (sqlite3_prepare_v2(db->conn, "DELETE FROM rules WHERE id = ?", -1, &st, NULL) !=
            SQLITE_OK) {
            rc = sql_failed(db, "delete a rule");
            goto done;
        }
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    }
    if ((rc = step_done(db, st, "write a rule")) != RK_DB_OK)
        goto done;

    if (sqlite3_prepare_v2(db->conn,
                           "INSERT INTO rule_history (rule_id, version, actor, at, action, before, "
                           "after, ruleset_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_failed(db, "append history");
        goto done;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, actor && *actor ? actor : "unknown", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
    if (before)
        sqlite3_bind_text(st, 6, before, -1, SQLITE_STATIC);
    if (after)
        sqlite3_bind_text(st, 7, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, rsv);
    if ((rc = step_done(db, st, "append history")) != RK_DB_OK)
        goto done;
    if (stored) {
        *stored = after_json;
        after_json = NULL;
    }
done:
    cJSON_Delete(after_json);
    free(cur.body);
    cJSON_free(before);
    cJSON_free(after);
    cJSON_free(body);
    return rc;
}

/* Commits, then tells the listener (still under the lock: snapshots in commit order). */
static rk_db_status_t finish(rk_rules_db_t *db, int64_t rsv, const char *id, const char *action) {
    rk_db_status_t rc = commit(db);
    if (rc == RK_DB_OK && db->on_commit)
        db->on_commit(db, db->on_commit_ctx, rsv, id, action);
    return rc;
}

/* rk_overrides_fit on the writer's connection, logging a failure of SQLite. */
static rk_db_status_t overrides_fit(rk_rules_db_t *db, const cJSON *canon, int64_t now_ms,
                                    const char *prefix, cJSON *errors) {
    rk_db_status_t rc = rk_overrides_fit(db->conn, canon, now_ms, prefix, errors);
    return rc == RK_DB_ERROR ? sql_failed(db, "read the overrides of a rule") : rc;
}

/* Where the new body of one change comes from. */
typedef struct {
    const cJSON *canon;         /* the body as given; NULL (and no build): a deletion */
    rk_rules_db_build_fn build; /* else built from the body as stored now */
    void *ctx;
} body_source_t;

/* Whether an If-Match list ("*", or tags separated by commas) names tag. */
static bool if_match_names(const char *if_match, const char *tag) {
    size_t len = strlen(tag);
    for (const char *p = if_match; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if ((n == 1 && *p == '*') || (n == len && !memcmp(p, tag, len)))
            return true;
        p += n;
    }
    return false;
}

/* Whether the rule stored as current (NULL: none) is in the state if_match expects. */
static bool state_expected(const cJSON *current, const char *if_match) {
    if (!if_match)
        return true;
    if (!current)
        return false;
    char tag[RK_RULE_ETAG_SIZE];
    rk_rule_etag(current, tag);
    return if_match_names(if_match, tag);
}

/*
 * Inside a change's transaction: checks that rule id exists (want RK_DB_OK)
 * or not (RK_DB_NOT_FOUND; anything else takes either) and is in the state
 * if_match expects, then builds the new body when src says so (*built, a
 * new cJSON). *row is the rule as read (its body the caller's to free).
 */
static rk_db_status_t new_body(rk_rules_db_t *db, const char *id, const body_source_t *src,
                               rk_db_status_t want, const char *if_match, cJSON *errors,
                               cJSON **built, rule_row_t *row) {
    rule_row_t cur;
    cJSON *current = NULL;
    rk_db_status_t rc = read_row(db, id, &cur);
    if (rc == RK_DB_ERROR)
        goto done;
    if ((want == RK_DB_OK || want == RK_DB_NOT_FOUND) && rc != want) {
        rc = want == RK_DB_OK ? RK_DB_NOT_FOUND : RK_DB_CONFLICT;
        goto done;
    }
    rc = RK_DB_OK;
    /* Nothing needs the stored body: one that is not JSON is replaced all the same. */
    if (!if_match && !src->build)
        goto done;
    current = cur.body ? cJSON_Parse(cur.body) : NULL;
    if (cur.body && !current)
        rc = RK_DB_ERROR;
    else if (!state_expected(current, if_match))
        rc = RK_DB_PRECONDITION;
    else if (src->build)
        rc = src->build(src->ctx, current, errors, built);
done:
    cJSON_Delete(current);
    *row = cur; /* the caller frees its body */
    return rc;
}

/* Whether the stored body of a rule equals canon (an import leaves it alone, a change makes no
 * version). */
static bool same_body(const char *body, const cJSON *canon) {
    cJSON *stored = cJSON_Parse(body);
    bool same = stored && cJSON_Compare(stored, canon, true);
    cJSON_Delete(stored);
    return same;
}

/*
 * Whether the rule as stored (cur, as new_body read it) has body already: a
 * change that changes nothing makes no version, no history entry and no
 * reload. *stored (when asked for) is then the rule as stored.
 */
static bool stored_already(const rule_row_t *cur, const cJSON *body, cJSON **stored) {
    if (!cur->body)
        return false;
    bool same = same_body(cur->body, body);
    if (same && stored)
        *stored = stored_rule(cur->body, cur->version, cur->created_ms, cur->updated_ms);
    return same;
}

/*
 * One change of one rule in its own transaction: the existence check (want,
 * as for new_body), the new body, the re-check of the rule's overrides
 * against it, and the write. A dry run rolls back where the change would
 * commit; *stored is then what it would have stored.
 */
static rk_db_status_t change_one(rk_rules_db_t *db, const char *id, const body_source_t *src,
                                 const char *action, rk_db_status_t want,
                                 const rk_change_opts_t *opts, cJSON **stored) {
    cJSON *errors = opts->errors ? opts->errors : cJSON_CreateArray();
    cJSON *built = NULL;
    rule_row_t cur = {0};
    int64_t now = rk_now_ms();
    pthread_mutex_lock(&db->lock);
    rk_db_status_t rc = begin(db);
    if (rc != RK_DB_OK)
        goto out;
    if ((rc = new_body(db, id, src, want, opts->if_match, errors, &built, &cur)) != RK_DB_OK)
        goto abort;
    const cJSON *body = src->build ? built : src->canon;
    if (body && (rc = overrides_fit(db, body, now, "", errors)) != RK_DB_OK)
        goto abort;
    if (body && stored_already(&cur, body, stored))
        goto abort; /* rc is RK_DB_OK: nothing to write */
    int64_t rsv = bump_ruleset_version(db);
    if (rsv < 0) {
        rc = sql_failed(db, "bump the ruleset version");
        goto abort;
    }
    if ((rc = write_change(db, id, body, action, opts->actor, rsv, now, stored)) != RK_DB_OK)
        goto abort;
    if (opts->dry_run)
        goto abort; /* answered as it would be stored */
    rc = finish(db, rsv, id, action);
    if (rc != RK_DB_OK && stored) {
        cJSON_Delete(*stored);
        *stored = NULL;
    }
    goto out;
abort:
    rollback(db);
out:
    pthread_mutex_unlock(&db->lock);
    free(cur.body);
    cJSON_Delete(built);
    if (errors != opts->errors)
        cJSON_Delete(errors);
    return rc;
}

static const char *canon_id(const cJSON *canon) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(canon, "id");
    return cJSON_IsString(id) ? id->valuestring : "";
}

rk_db_status_t rk_rules_db_create(rk_rules_db_t *db, const cJSON *canon,
                                  const rk_change_opts_t *opts, cJSON **stored) {
    body_source_t src = {.canon = canon};
    return change_one(db, canon_id(canon), &src, "create", RK_DB_NOT_FOUND, opts, stored);
}

rk_db_status_t rk_rules_db_replace(rk_rules_db_t *db, const cJSON *canon,
                                   const rk_change_opts_t *opts, cJSON **stored) {
    body_source_t src = {.canon = canon};
    return change_one(db, canon_id(canon), &src, "update", RK_DB_OK, opts, stored);
}

rk_db_status_t rk_rules_db_update(rk_rules_db_t *db, const char *id, rk_rules_db_build_fn build,
                                  void *ctx, const rk_change_opts_t *opts, cJSON **stored) {
    body_source_t src = {.build = build, .ctx = ctx};
    return change_one(db, id, &src, "update", RK_DB_OK, opts, stored);
}

rk_db_status_t rk_rules_db_delete(rk_rules_db_t *db, const char *id, const char *actor,
                                  const char *if_match) {
    body_source_t src = {0};
    const rk_change_opts_t opts = {.actor = actor, .if_match = if_match};
    return change_one(db, id, &src, "delete", RK_DB_OK, &opts, NULL);
}

/* The "after" of one history entry as text (malloc'ed); NOT_FOUND, CONFLICT when NULL. */
static rk_db_status_t history_after(rk_rules_db_t *db, const char *id, int64_t version,
                                    char **after) {
    sqlite3_stmt *st;
    *after = NULL;
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT after FROM rule_history WHERE rule_id = ? AND version = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return sql_failed(db, "read history");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    rk_db_status_t rc = RK_DB_NOT_FOUND;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        rc = text ? RK_DB_OK : RK_DB_CONFLICT;
        if (text && !(*after = strdup(text)))
            rc = RK_DB_ERROR;
    } else if (step != SQLITE_DONE) {
        rc = sql_failed(db, "read history");
    }
    sqlite3_finalize(st);
    return rc;
}

/* The version a restore brings back. */
typedef struct {
    rk_rules_db_t *db;
    const char *id;
    int64_t version;
} restore_t;

/* Builds the body of a restore from its history entry, validated again (build function). */
static rk_db_status_t restored_body(void *ctx, const cJSON *current, cJSON *errors, cJSON **canon) {
    (void)current;
    const restore_t *r = ctx;
    char *after = NULL;
    rk_db_status_t rc = history_after(r->db, r->id, r->version, &after);
    if (rc != RK_DB_OK)
        return rc;
    cJSON *old = cJSON_Parse(after);
    free(after);
    rk_rule_drop_ignored_burst(old); /* a version from before bursts were refused there */
    *canon = old ? rk_rule_canonical(old, errors) : NULL;
    cJSON_Delete(old);
    return *canon ? RK_DB_OK : RK_DB_INVALID;
}

rk_db_status_t rk_rules_db_restore(rk_rules_db_t *db, const char *id, int64_t version,
                                   const char *actor, cJSON **stored, cJSON *errors) {
    restore_t r = {.db = db, .id = id, .version = version};
    body_source_t src = {.build = restored_body, .ctx = &r};
    rk_change_opts_t opts = {.actor = actor, .errors = errors};
    return change_one(db, id, &src, "restore", RK_DB_ERROR /* either */, &opts, stored);
}

rk_db_status_t rk_rules_db_run(rk_rules_db_t *db, const char *rule_id, const char *action,
                               rk_db_status_t (*fn)(sqlite3 *conn, void *ctx), void *ctx) {
    pthread_mutex_lock(&db->lock);
    rk_db_status_t rc;
    if (!action) {
        rc = fn(db->conn, ctx);
        goto out;
    }
    if ((rc = begin(db)) != RK_DB_OK)
        goto out;
    if ((rc = fn(db->conn, ctx)) != RK_DB_OK)
        goto abort;
    int64_t rsv = bump_ruleset_version(db);
    if (rsv < 0) {
        rc = sql_failed(db, "bump the ruleset version");
        goto abort;
    }
    rc = finish(db, rsv, rule_id, action);
    goto out;
abort:
    rollback(db);
out:
    pthread_mutex_unlock(&db->lock);
    return rc;
}

/* One import in the making, inside its transaction. */
typedef struct {
    rk_rules_db_t *db;
    const cJSON *rules;     /* the canonical rules of the document */
    const cJSON *overrides; /* the document's overrides (rk_overrides_import), or NULL */
    const rk_change_opts_t *opts;
    bool check_overrides; /* refuse a changed rule its stored overrides do not fit */
    int64_t now_ms, rsv;  /* rsv: the ruleset version, bumped once at the first write */
    bool bumped;
    rk_import_result_t *result;
} import_t;

/* The ids of stored rules the document does not name (a new array of strings), NULL on error. */
static cJSON *doomed_ids(import_t *im) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(im->db->conn, "SELECT id FROM rules ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    cJSON *doomed = cJSON_CreateArray();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        bool named = false;
        const cJSON *r;
        cJSON_ArrayForEach(r, im->rules) {
            if (!strcmp(canon_id(r), id)) {
                named = true;
                break;
            }
        }
        if (!named)
            cJSON_AddItemToArray(doomed, cJSON_CreateString(id));
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        cJSON_Delete(doomed);
        return NULL;
    }
    return doomed;
}

/* Bumps the ruleset version at the import's first change, once. */
static rk_db_status_t import_bump(import_t *im) {
    if (!im->bumped) {
        im->rsv = bump_ruleset_version(im->db);
        im->bumped = im->rsv >= 0;
        if (!im->bumped)
            return sql_failed(im->db, "bump the ruleset version");
    }
    return RK_DB_OK;
}

/* Writes one change of the import (canon NULL: a deletion), bumping the version first once. */
static rk_db_status_t import_write(import_t *im, const char *id, const cJSON *canon,
                                   const char *action) {
    rk_db_status_t rc = import_bump(im);
    if (rc != RK_DB_OK)
        return rc;
    return write_change(im->db, id, canon, action, im->opts->actor, im->rsv, im->now_ms, NULL);
}

/*
 * Creates and updates the document's rules (identical ones are left alone).
 * Every changed rule's overrides are checked, all before any answer, so
 * that every misfit is listed: INVALID when one does not fit.
 */
static rk_db_status_t import_rules(import_t *im) {
    bool misfit = false;
    int i = -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, im->rules) {
        i++;
        rule_row_t cur;
        rk_db_status_t rc = read_row(im->db, canon_id(r), &cur);
        bool exists = rc == RK_DB_OK, unchanged = exists && same_body(cur.body, r);
        free(cur.body);
        if (rc == RK_DB_ERROR)
            return rc;
        if (unchanged)
            continue;
        if (im->check_overrides) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "rules[%d].", i);
            rc = overrides_fit(im->db, r, im->now_ms, prefix, im->opts->errors);
            if (rc == RK_DB_ERROR)
                return rc;
            misfit = misfit || rc == RK_DB_INVALID;
        }
        if (misfit)
            continue; /* only checking the rest now */
        if ((rc = import_write(im, canon_id(r), r, exists ? "update" : "create")) != RK_DB_OK)
            return rc;
        if (exists)
            im->result->updated++;
        else
            im->result->created++;
    }
    return misfit ? RK_DB_INVALID : RK_DB_OK;
}

/* Deletes the stored rules the document does not name. */
static rk_db_status_t import_deletions(import_t *im) {
    cJSON *doomed = doomed_ids(im);
    if (!doomed)
        return sql_failed(im->db, "list rules");
    rk_db_status_t rc = RK_DB_OK;
    const cJSON *id;
    cJSON_ArrayForEach(id, doomed) {
        if ((rc = import_write(im, id->valuestring, NULL, "delete")) != RK_DB_OK)
            break;
        im->result->deleted++;
    }
    cJSON_Delete(doomed);
    return rc;
}

/*
 * Makes the overrides the document's, before the deletions: the overrides of
 * the rules it deletes (none in the document) are counted as deleted here.
 * Expired ones it removes are no change of their own.
 */
static rk_db_status_t import_overrides(import_t *im) {
    rk_override_counts_t *n = &im->result->overrides;
    if (rk_overrides_import(im->db->conn, im->overrides, im->opts->actor, im->now_ms, n) !=
        RK_DB_OK)
        return sql_failed(im->db, "write the overrides");
    return n->created + n->updated + n->deleted > 0 ? import_bump(im) : RK_DB_OK;
}

/* The import; expected_version -1 takes any ruleset version. */
static rk_db_status_t import(import_t *im, int64_t expected_version) {
    rk_rules_db_t *db = im->db;
    memset(im->result, 0, sizeof *im->result);
    pthread_mutex_lock(&db->lock);
    rk_db_status_t rc = begin(db);
    if (rc != RK_DB_OK)
        goto out;
    im->rsv = rk_rules_db_read_version(db->conn);
    if (im->rsv < 0) {
        rc = sql_failed(db, "read the ruleset version");
        goto abort;
    }
    if (expected_version >= 0 && im->rsv != expected_version) {
        rc = RK_DB_CONFLICT;
        goto abort;
    }
    if ((rc = import_rules(im)) != RK_DB_OK ||
        (im->overrides && (rc = import_overrides(im)) != RK_DB_OK) ||
        (rc = import_deletions(im)) != RK_DB_OK)
        goto abort;
    im->result->version = im->rsv;
    if (im->opts->dry_run || !im->bumped) {
        rollback(db);
        goto out;
    }
    /* changes another instance made, taken from Redis: a reload, as the
     * reload thread says of another process's */
    rc = finish(db, im->rsv, NULL, !strcmp(im->opts->actor, RK_ACTOR_SYNC) ? "reload" : "import");
    goto out;
abort:
    rollback(db);
    memset(im->result, 0, sizeof *im->result);
out:
    pthread_mutex_unlock(&db->lock);
    return rc;
}

rk_db_status_t rk_rules_db_import(rk_rules_db_t *db, const cJSON *rules, const cJSON *overrides,
                                  const rk_change_opts_t *opts, rk_import_result_t *result) {
    cJSON *errors = opts->errors ? opts->errors : cJSON_CreateArray();
    rk_change_opts_t with_errors = *opts;
    with_errors.errors = errors;
    import_t im = {.db = db,
                   .rules = rules,
                   .overrides = overrides,
                   .opts = &with_errors,
                   .check_overrides = !overrides,
                   .now_ms = rk_now_ms(),
                   .result = result};
    rk_db_status_t rc = import(&im, -1);
    if (errors != opts->errors)
        cJSON_Delete(errors);
    return rc;
}

rk_db_status_t rk_rules_db_import_at(rk_rules_db_t *db, const cJSON *rules, const char *actor,
                                     int64_t expected_version, rk_import_result_t *result) {
    rk_change_opts_t opts = {.actor = actor};
    import_t im = {
        .db = db, .rules = rules, .opts = &opts, .now_ms = rk_now_ms(), .result = result};
    return import(&im, expected_version);
}
