/*
 * lists_api.c — /api/v1/lists (safelist and denylist entries) and
 * /api/v1/bans (temporary denylist entries, kept apart so they can be
 * listed and lifted on their own).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lists/list_value.h"
#include "../lists/lists.h"
#include "../log.h"
#include "../rules/rule.h"
#include "../store/store.h"
#include "http.h"

#define NOTE_MAX 256

/* Parses "2026-11-22T10:00:00Z" (fraction and "+00:00" accepted) into epoch ms. */
static rk_status_t parse_time(const char *text, int64_t *ms) {
    struct tm tm = {0};
    char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return RK_ERR;
    if (*end == '.')
        for (end++; *end >= '0' && *end <= '9'; end++)
            ;
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return RK_ERR;
    *ms = (int64_t)timegm(&tm) * 1000;
    return RK_OK;
}

/* The stored kind of a value of kind k: "cidr", "key", or NULL when it is not valid. */
static const char *kind_name(rk_list_value_kind_t k) {
    return k == RK_LIST_VALUE_CIDR ? "cidr" : k == RK_LIST_VALUE_KEY ? "key" : NULL;
}

static const char *value_kind(const char *value) {
    return kind_name(rk_list_value_kind(value));
}

/*
 * Sets *kind to the stored kind of value; when the value is not valid,
 * adds why to errors (field "value") and answers false.
 */
static bool read_value(const char *value, const char **kind, cJSON *errors) {
    rk_list_value_kind_t k = rk_list_value_kind(value);
    *kind = kind_name(k);
    if (k == RK_LIST_VALUE_BAD_ADDRESS)
        rk_rule_error(errors, "value",
                      "is not a valid address or CIDR: an IPv4 prefix is at most /32, an "
                      "IPv6 one at most /128, with no port or brackets");
    else if (k == RK_LIST_VALUE_SPACES)
        rk_rule_error(errors, "value", "must not begin or end with spaces");
    else if (!*kind)
        rk_rule_error(errors, "value",
                      "must be an address, a CIDR, or a client key such as \"user:42\" "
                      "(printable, no spaces, at most %d characters)",
                      RK_LIST_VALUE_MAX);
    return *kind != NULL;
}

static cJSON *entry_json(sqlite3_stmt *st) {
    cJSON *o = cJSON_CreateObject();
    char when[32];
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "list", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddStringToObject(o, "value", (const char *)sqlite3_column_text(st, 2));
    cJSON_AddStringToObject(o, "kind", (const char *)sqlite3_column_text(st, 3));
    if (sqlite3_column_type(st, 4) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "expires_at");
    } else {
        rk_format_time(sqlite3_column_int64(st, 4), when);
        cJSON_AddStringToObject(o, "expires_at", when);
    }
    cJSON_AddStringToObject(o, "note", (const char *)sqlite3_column_text(st, 5));
    rk_format_time(sqlite3_column_int64(st, 6), when);
    cJSON_AddStringToObject(o, "created_at", when);
    cJSON_AddStringToObject(o, "created_by", (const char *)sqlite3_column_text(st, 7));
    return o;
}

#define ENTRY_COLUMNS "id, list, value, kind, expires_at, note, created_at, created_by"

/* Answers the live entries of one source ("list" or "ban") and list (NULL: both), newest first. */
static enum MHD_Result list_entries(rk_request_t *req, const char *source, const char *which,
                                    const char *member) {
    sqlite3 *db = rk_lists_db_lock();
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT " ENTRY_COLUMNS " FROM lists WHERE source = ?1 AND "
                                "(?2 IS NULL OR list = ?2) AND (expires_at IS NULL OR "
                                "expires_at > ?3) ORDER BY id DESC LIMIT 10000",
                                -1, &st, NULL);
    cJSON *arr = cJSON_CreateArray();
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
        if (which)
            sqlite3_bind_text(st, 2, which, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, rk_now_ms());
        while (sqlite3_step(st) == SQLITE_ROW)
            cJSON_AddItemToArray(arr, entry_json(st));
    }
    sqlite3_finalize(st);
    rk_lists_db_unlock(false);
    if (rc != SQLITE_OK) {
        cJSON_Delete(arr);
        return rk_reply_error(req, 503, "lists_unavailable", "The lists cannot be read now");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, member, arr);
    return rk_reply_json(req, 200, o);
}

typedef struct {
    const char *list, *value, *kind, *note;
    int64_t expires_ms; /* 0: never */
} new_entry_t;

/* ---- writes: each in one transaction that first purges expired entries ---- */

/*
 * Deletes the entries that expired by now_ms (lock and transaction held):
 * they are in force nowhere and listed nowhere, and one left in the table
 * would keep its value from being added again (UNIQUE (list, value)).
 * Every write purges, so the table holds at most the live entries and the
 * ones that expired since the last write. The number deleted, or -1.
 */
static int purge_expired(sqlite3 *db, int64_t now_ms) {
    sqlite3_stmt *st = NULL;
    int purged = -1;
    if (sqlite3_prepare_v2(db,
                           "DELETE FROM lists WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now_ms);
        if (sqlite3_step(st) == SQLITE_DONE)
            purged = sqlite3_changes(db);
    }
    sqlite3_finalize(st);
    return purged;
}

static bool begin_write(sqlite3 *db) {
    return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
}

/* Commits when ok (false, logged, when the commit fails), else rolls back. */
static bool end_write(sqlite3 *db, bool ok) {
    if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return true;
    if (ok) /* the rows are written at the commit: a full disk says so here */
        rk_error("lists: cannot commit a change: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

/*
 * Inserts e (lock and transaction held): the stored entry as a new cJSON
 * object, or NULL with the SQLite result code in *rc (SQLITE_CONSTRAINT: the
 * value is on that list already).
 */
static cJSON *insert_row(sqlite3 *db, const new_entry_t *e, const char *source, const char *actor,
                         int *rc) {
    sqlite3_stmt *st = NULL;
    cJSON *entry = NULL;
    *rc = sqlite3_prepare_v2(db,
                             "INSERT INTO lists (list, value, kind, source, expires_at, note, "
                             "created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                             "RETURNING " ENTRY_COLUMNS,
                             -1, &st, NULL);
    if (*rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, e->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->value, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, e->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
        if (e->expires_ms)
            sqlite3_bind_int64(st, 5, e->expires_ms);
        sqlite3_bind_text(st, 6, e->note, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, rk_now_ms());
        sqlite3_bind_text(st, 8, actor ? actor : "", -1, SQLITE_STATIC);
        *rc = sqlite3_step(st);
        if (*rc == SQLITE_ROW)
            entry = entry_json(st);
        if (*rc == SQLITE_ROW)
            *rc = sqlite3_step(st);
    }
    if (sqlite3_finalize(st) != SQLITE_OK || *rc != SQLITE_DONE) {
        cJSON_Delete(entry);
        entry = NULL;
    }
    return entry;
}

/* Inserts an entry and answers it (201), or the error (400/409/503). */
static enum MHD_Result insert_entry(rk_request_t *req, const new_entry_t *e, const char *source) {
    sqlite3 *db = rk_lists_db_lock();
    cJSON *entry = NULL;
    int rc = SQLITE_ERROR;
    if (begin_write(db) && purge_expired(db, rk_now_ms()) >= 0)
        entry = insert_row(db, e, source, req->actor, &rc);
    if (!entry && rc != SQLITE_CONSTRAINT)
        rk_error("lists: cannot store an entry: %s", sqlite3_errmsg(db));
    if (!end_write(db, entry != NULL) && entry) {
        cJSON_Delete(entry);
        entry = NULL;
        rc = SQLITE_ERROR;
    }
    rk_lists_db_unlock(entry != NULL);
    if (entry)
        return rk_reply_json(req, 201, entry);
    if (rc == SQLITE_CONSTRAINT)
        return rk_reply_error(req, 409, "conflict", "'%s' is already on the %s", e->value, e->list);
    return rk_reply_error(req, 503, "lists_unavailable", "The entry could not be stored");
}

static const char *json_str(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The entry's value, its header names folded as checks write them (in place). */
static const char *entry_value(const cJSON *doc) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "value");
    if (!cJSON_IsString(v))
        return NULL;
    rk_key_fold_header_names(v->valuestring);
    return v->valuestring;
}

/* Reads expires_at (ISO 8601 or null) or a duration into *ms; false when malformed. */
static bool read_expiry(const cJSON *doc, const char *duration_field, int64_t *ms, cJSON *errors) {
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(doc, "expires_at");
    const char *duration = duration_field ? json_str(doc, duration_field) : NULL;
    *ms = 0;
    if (duration) {
        int64_t d;
        if (rk_duration_parse(duration, &d) != RK_OK) {
            rk_rule_error(errors, duration_field, "must be a duration such as \"10m\" or \"1h\"");
            return false;
        }
        *ms = rk_now_ms() + d;
        return true;
    }
    if (!exp || cJSON_IsNull(exp))
        return true;
    if (!cJSON_IsString(exp) || parse_time(exp->valuestring, ms) != RK_OK) {
        rk_rule_error(errors, "expires_at", "must be a time such as \"2026-12-01T00:00:00Z\"");
        return false;
    }
    if (*ms <= rk_now_ms()) {
        rk_rule_error(errors, "expires_at", "must be in the future");
        return false;
    }
    return true;
}

/* POST /api/v1/lists {"list", "value", "expires_at", "note"} */
static enum MHD_Result handle_add(rk_request_t *req) {
    cJSON *doc = rk_request_json(req);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return rk_reply_bad_json(req, "a JSON object");
    }
    cJSON *errors = cJSON_CreateArray();
    new_entry_t e = {json_str(doc, "list"), entry_value(doc), NULL, json_str(doc, "note"), 0};
    if (!e.list || (strcmp(e.list, "safelist") && strcmp(e.list, "denylist")))
        rk_rule_error(errors, "list", "must be \"safelist\" or \"denylist\"");
    read_value(e.value, &e.kind, errors);
    if (!e.note)
        e.note = "";
    else if (strlen(e.note) > NOTE_MAX)
        rk_rule_error(errors, "note", "must be at most %d bytes", NOTE_MAX);
    read_expiry(doc, NULL, &e.expires_ms, errors);
    enum MHD_Result r;
    if (cJSON_GetArraySize(errors) > 0)
        r = rk_reply_invalid(req, "invalid_request", "The entry is not valid", errors);
    else {
        cJSON_Delete(errors);
        r = insert_entry(req, &e, "list");
    }
    cJSON_Delete(doc);
    return r;
}

/* POST /api/v1/bans {"value", "duration": "10m" | "expires_at", "reason"} */
static enum MHD_Result handle_ban(rk_request_t *req) {
    cJSON *doc = rk_request_json(req);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return rk_reply_bad_json(req, "a JSON object");
    }
    cJSON *errors = cJSON_CreateArray();
    new_entry_t e = {"denylist", entry_value(doc), NULL, json_str(doc, "reason"), 0};
    read_value(e.value, &e.kind, errors);
    if (!e.note)
        e.note = "";
    else if (strlen(e.note) > NOTE_MAX)
        rk_rule_error(errors, "reason", "must be at most %d bytes", NOTE_MAX);
    if (read_expiry(doc, "duration", &e.expires_ms, errors) && e.expires_ms == 0)
        rk_rule_error(errors, "duration", "a ban needs a duration or an expires_at");
    enum MHD_Result r;
    if (cJSON_GetArraySize(errors) > 0)
        r = rk_reply_invalid(req, "invalid_request", "The ban is not valid", errors);
    else {
        cJSON_Delete(errors);
        r = insert_entry(req, &e, "ban");
    }
    cJSON_Delete(doc);
    return r;
}

/* Deletes the entries of source whose id (value NULL) or value matches
 * (lock and transaction held); the number deleted, or -1. */
static int delete_rows(sqlite3 *db, long long id, const char *value, const char *source) {
    sqlite3_stmt *st = NULL;
    int changes = -1;
    const char *sql = value ? "DELETE FROM lists WHERE value = ?1 AND source = ?2"
                            : "DELETE FROM lists WHERE id = ?1 AND source = ?2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (value)
            sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            changes = sqlite3_changes(db);
    }
    sqlite3_finalize(st);
    return changes;
}

/*
 * Removes the live entries of source whose id (value NULL) or value
 * matches: the number removed, or -1 when the database failed. An entry
 * that has expired is purged first, so it counts as not found (404), as it
 * is neither listed nor in force.
 */
static int remove_entries(long long id, const char *value, const char *source) {
    sqlite3 *db = rk_lists_db_lock();
    int purged = -1, changes = -1;
    if (begin_write(db) && (purged = purge_expired(db, rk_now_ms())) >= 0)
        changes = delete_rows(db, id, value, source);
    if (!end_write(db, changes >= 0))
        purged = changes = -1;
    rk_lists_db_unlock(purged > 0 || changes > 0);
    return changes;
}

static enum MHD_Result removed_reply(rk_request_t *req, int changes, const char *what) {
    if (changes < 0)
        return rk_reply_error(req, 503, "lists_unavailable", "The entry could not be removed");
    if (changes == 0)
        return rk_reply_error(req, 404, "not_found", "No %s", what);
    return rk_reply_empty(req, 204);
}

static enum MHD_Result delete_entry(rk_request_t *req, const char *source) {
    char *end;
    long long id = strtoll(req->params[0], &end, 10);
    if (*end || id <= 0)
        return rk_reply_error(req, 404, "not_found", "No entry %s", req->params[0]);
    char what[48];
    snprintf(what, sizeof what, "entry %lld", id);
    return removed_reply(req, remove_entries(id, NULL, source), what);
}

/* GET /api/v1/lists?list=safelist|denylist: a list no entry can be on is refused, not
 * answered empty (a misspelt filter would read as "nothing listed"). */
static enum MHD_Result handle_list(rk_request_t *req) {
    const char *which = rk_request_query(req, "list");
    if (which && !*which)
        which = NULL;
    if (which && strcmp(which, "safelist") != 0 && strcmp(which, "denylist") != 0)
        return rk_reply_error(req, 400, "invalid_request", "?list= must be safelist or denylist");
    return list_entries(req, "list", which, "entries");
}

/* GET /api/v1/bans: every ban is on the denylist, so it takes no ?list=. */
static enum MHD_Result handle_bans(rk_request_t *req) {
    return list_entries(req, "ban", NULL, "bans");
}

static enum MHD_Result handle_remove(rk_request_t *req) {
    return delete_entry(req, "list");
}

static enum MHD_Result handle_unban(rk_request_t *req) {
    return delete_entry(req, "ban");
}

/* DELETE /api/v1/bans?value=<address, CIDR or key>: lifts the bans on a value. */
static enum MHD_Result handle_unban_value(rk_request_t *req) {
    const char *asked = rk_request_query(req, "value");
    char value[RK_LIST_VALUE_MAX + 1];
    if (asked && strlen(asked) < sizeof value) {
        memcpy(value, asked, strlen(asked) + 1);
        rk_key_fold_header_names(value);
    }
    if (!asked || strlen(asked) >= sizeof value || !value_kind(value))
        return rk_reply_error(req, 400, "invalid_request",
                              "Name the ban to lift: DELETE /api/v1/bans/{id}, or "
                              "?value= with the banned address, CIDR or key");
    return removed_reply(req, remove_entries(0, value, "ban"), "ban on that value");
}

const rk_route_t rk_lists_routes[] = {
    {"GET", "/api/v1/lists", handle_list, RK_ROLE_VIEWER, false},
    {"POST", "/api/v1/lists", handle_add, RK_ROLE_EDITOR, true},
    {"DELETE", "/api/v1/lists/{id}", handle_remove, RK_ROLE_EDITOR, true},
    {"GET", "/api/v1/bans", handle_bans, RK_ROLE_VIEWER, false},
    {"POST", "/api/v1/bans", handle_ban, RK_ROLE_EDITOR, true},
    {"DELETE", "/api/v1/bans", handle_unban_value, RK_ROLE_EDITOR, true},
    {"DELETE", "/api/v1/bans/{id}", handle_unban, RK_ROLE_EDITOR, true},
};
const size_t rk_lists_routes_len = RK_ARRAY_LEN(rk_lists_routes);
