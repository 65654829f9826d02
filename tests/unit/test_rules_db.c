/*
 * test_rules_db.c — the rules in SQLite and the snapshot the check path
 * reads: versions and history of every change, restore (of a deleted rule
 * too), import all-or-nothing, migrations, a newer database refused,
 * changes made by another connection reaching the snapshot in time,
 * parallel updates each building on the latest version, a change its
 * overrides no longer fit refused, and an import's overrides.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rule.h"
#include "rules/rules.h"
#include "rules/rules_db.h"

static char dir[64];
static char path[128];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/ratekit-rules-XXXXXX");
    if (!mkdtemp(dir))
        cr_fatal("mkdtemp failed");
    snprintf(path, sizeof path, "%s/ratekit.db", dir);
}

static void remove_dir(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

TestSuite(rules_db, .init = make_dir, .fini = remove_dir);

/* A canonical rule from JSON text (fails the test when invalid). */
static cJSON *canon(const char *text) {
    cJSON *doc = cJSON_Parse(text);
    cJSON *errors = cJSON_CreateArray();
    cJSON *c = doc ? rk_rule_canonical(doc, errors) : NULL;
    char *listed = cJSON_PrintUnformatted(errors);
    if (!c)
        cr_fatal("invalid test rule %s: %s", text, listed);
    cJSON_free(listed);
    cJSON_Delete(errors);
    cJSON_Delete(doc);
    return c;
}

static cJSON *rule_with_limit(const char *id, int limit) {
    char text[256];
    snprintf(text, sizeof text,
             "{\"id\":\"%s\",\"algorithm\":\"fixed_window\",\"limit\":%d,\"window\":\"1m\"}", id,
             limit);
    return canon(text);
}

static int64_t num(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItem(obj, name);
    if (!cJSON_IsNumber(v))
        cr_fatal("%s is not a number", name);
    return (int64_t)v->valuedouble;
}

/* The options of a change made by actor (a dry run: trial). */
static const rk_change_opts_t *by(const char *actor) {
    static rk_change_opts_t opts;
    opts = (rk_change_opts_t){.actor = actor};
    return &opts;
}

static const rk_change_opts_t *trial(const char *actor) {
    static rk_change_opts_t opts;
    opts = (rk_change_opts_t){.actor = actor, .dry_run = true};
    return &opts;
}

static rk_rules_db_t *open_db(void) {
    char err[256];
    rk_rules_db_t *db = rk_rules_db_open(path, err, sizeof err);
    if (!db)
        cr_fatal("open: %s", err);
    return db;
}

static void create(rk_rules_db_t *db, const char *id, int limit) {
    cJSON *c = rule_with_limit(id, limit);
    cr_assert_eq(rk_rules_db_create(db, c, by("alice"), NULL), RK_DB_OK);
    cJSON_Delete(c);
}

static int64_t stored_limit(rk_rules_db_t *db, const char *id) {
    cJSON *r = NULL;
    if (rk_rules_db_get(db, id, &r) != RK_DB_OK)
        return -1;
    int64_t v = num(r, "limit");
    cJSON_Delete(r);
    return v;
}

Test(rules_db, create_answers_the_stored_rule_and_refuses_an_existing_id) {
    rk_rules_db_t *db = open_db();
    cJSON *c = rule_with_limit("login", 5);
    cJSON *stored = NULL;
    cr_assert_eq(rk_rules_db_create(db, c, by("alice"), &stored), RK_DB_OK);
    cr_assert_eq(num(stored, "version"), 1);
    cr_assert_eq(num(stored, "window_ms"), 60000);
    const char *created = cJSON_GetObjectItem(stored, "created_at")->valuestring;
    cr_assert_eq(strlen(created), 20, "ISO 8601 UTC: %s", created);
    cr_assert_eq(created[19], 'Z');
    cJSON_Delete(stored);

    cJSON *again = rule_with_limit("login", 99);
    cr_assert_eq(rk_rules_db_create(db, again, by("bob"), NULL), RK_DB_CONFLICT);
    cr_assert_eq(stored_limit(db, "login"), 5, "a refused create changes nothing");
    cJSON_Delete(again);
    cJSON_Delete(c);

    cJSON *list;
    int64_t version;
    cr_assert_eq(rk_rules_db_list(db, &list, &version), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cr_assert_eq(version, 1, "one change so far");
    cJSON_Delete(list);
    rk_rules_db_close(db);
}

Test(rules_db, every_change_bumps_versions_and_appends_history_newest_first) {
    rk_rules_db_t *db = open_db();
    create(db, "api", 10);
    cJSON *c = rule_with_limit("api", 20);
    cJSON *stored = NULL;
    cr_assert_eq(rk_rules_db_replace(db, c, by("bob"), &stored), RK_DB_OK);
    cr_assert_eq(num(stored, "version"), 2);
    cJSON_Delete(stored);
    cJSON_Delete(c);
    cr_assert_eq(rk_rules_db_delete(db, "api", "carol", NULL), RK_DB_OK);
    cr_assert_eq(stored_limit(db, "api"), -1);
    cr_assert_eq(rk_rules_db_delete(db, "api", "carol", NULL), RK_DB_NOT_FOUND);

    cJSON *history;
    cr_assert_eq(rk_rules_db_history(db, "api", &history), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(history), 3);
    cJSON *del = cJSON_GetArrayItem(history, 0), *upd = cJSON_GetArrayItem(history, 1),
          *cre = cJSON_GetArrayItem(history, 2);
    cr_assert_str_eq(cJSON_GetObjectItem(del, "action")->valuestring, "delete");
    cr_assert_eq(num(del, "version"), 3);
    cr_assert_str_eq(cJSON_GetObjectItem(del, "actor")->valuestring, "carol");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(del, "after")));
    cr_assert_eq(num(cJSON_GetObjectItem(del, "before"), "limit"), 20);
    cr_assert_str_eq(cJSON_GetObjectItem(upd, "action")->valuestring, "update");
    cr_assert_eq(num(cJSON_GetObjectItem(upd, "before"), "limit"), 10);
    cr_assert_eq(num(cJSON_GetObjectItem(upd, "after"), "limit"), 20);
    cr_assert_str_eq(cJSON_GetObjectItem(cre, "action")->valuestring, "create");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(cre, "before")));
    cJSON_Delete(history);
    cr_assert_eq(rk_rules_db_history(db, "never", &history), RK_DB_NOT_FOUND);

    c = rule_with_limit("ghost", 1);
    cr_assert_eq(rk_rules_db_replace(db, c, by("bob"), NULL), RK_DB_NOT_FOUND);
    cJSON_Delete(c);
    cJSON *list;
    int64_t version;
    cr_assert_eq(rk_rules_db_list(db, &list, &version), RK_DB_OK);
    cr_assert_eq(version, 3);
    cJSON_Delete(list);
    rk_rules_db_close(db);
}

Test(rules_db, restore_brings_back_an_old_version_even_of_a_deleted_rule) {
    rk_rules_db_t *db = open_db();
    create(db, "api", 10);
    cJSON *c = rule_with_limit("api", 20);
    cr_assert_eq(rk_rules_db_replace(db, c, by("bob"), NULL), RK_DB_OK);
    cJSON_Delete(c);
    cr_assert_eq(rk_rules_db_delete(db, "api", "bob", NULL), RK_DB_OK);

    cJSON *errors = cJSON_CreateArray();
    cJSON *stored = NULL;
    cr_assert_eq(rk_rules_db_restore(db, "api", 1, "dave", &stored, errors), RK_DB_OK);
    cr_assert_eq(num(stored, "limit"), 10);
    cr_assert_eq(num(stored, "version"), 4, "a restore is a new version");
    cJSON_Delete(stored);
    cr_assert_eq(stored_limit(db, "api"), 10);

    cr_assert_eq(rk_rules_db_restore(db, "api", 2, "dave", NULL, errors), RK_DB_OK);
    cr_assert_eq(stored_limit(db, "api"), 20);
    cr_assert_eq(rk_rules_db_restore(db, "api", 99, "dave", NULL, errors), RK_DB_NOT_FOUND);
    cr_assert_eq(rk_rules_db_restore(db, "api", 3, "dave", NULL, errors), RK_DB_CONFLICT,
                 "version 3 deleted the rule");
    cr_assert_eq(rk_rules_db_restore(db, "nope", 1, "dave", NULL, errors), RK_DB_NOT_FOUND);
    cJSON_Delete(errors);

    cJSON *history;
    cr_assert_eq(rk_rules_db_history(db, "api", &history), RK_DB_OK);
    cJSON *top = cJSON_GetArrayItem(history, 0);
    cr_assert_str_eq(cJSON_GetObjectItem(top, "action")->valuestring, "restore");
    cr_assert_eq(num(top, "version"), 5);
    cJSON_Delete(history);
    rk_rules_db_close(db);
}

Test(rules_db, recreating_a_deleted_id_continues_its_versions) {
    rk_rules_db_t *db = open_db();
    create(db, "api", 10);
    cr_assert_eq(rk_rules_db_delete(db, "api", "bob", NULL), RK_DB_OK);
    cJSON *c = rule_with_limit("api", 30);
    cJSON *stored = NULL;
    cr_assert_eq(rk_rules_db_create(db, c, by("bob"), &stored), RK_DB_OK);
    cr_assert_eq(num(stored, "version"), 3);
    cJSON_Delete(stored);
    cJSON_Delete(c);
    rk_rules_db_close(db);
}

/* The import document: an array of canonical rules. */
static cJSON *import_doc(int n, const char *const *ids, const int *limits) {
    cJSON *rules = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(rules, rule_with_limit(ids[i], limits[i]));
    return rules;
}

Test(rules_db, import_replaces_the_ruleset_and_counts_the_changes) {
    rk_rules_db_t *db = open_db();
    create(db, "keep", 1);
    create(db, "change", 2);
    create(db, "drop", 3);
    const char *ids[] = {"keep", "change", "new"};
    const int limits[] = {1, 20, 4};
    cJSON *doc = import_doc(3, ids, limits);

    rk_import_result_t res;
    cr_assert_eq(rk_rules_db_import(db, doc, NULL, trial("gitops"), &res), RK_DB_OK);
    cr_assert_eq(res.created, 1);
    cr_assert_eq(res.updated, 1);
    cr_assert_eq(res.deleted, 1);
    cr_assert_eq(stored_limit(db, "drop"), 3, "a dry run changes nothing");
    cr_assert_eq(stored_limit(db, "new"), -1);

    cr_assert_eq(rk_rules_db_import(db, doc, NULL, by("gitops"), &res), RK_DB_OK);
    cr_assert_eq(res.created, 1);
    cr_assert_eq(res.updated, 1);
    cr_assert_eq(res.deleted, 1);
    cr_assert_eq(res.version, 4, "one import is one ruleset version");
    cr_assert_eq(stored_limit(db, "drop"), -1);
    cr_assert_eq(stored_limit(db, "change"), 20);
    cr_assert_eq(stored_limit(db, "new"), 4);

    cJSON *history;
    cr_assert_eq(rk_rules_db_history(db, "keep", &history), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(history), 1, "an unchanged rule is left alone");
    cJSON_Delete(history);

    cr_assert_eq(rk_rules_db_import(db, doc, NULL, by("gitops"), &res), RK_DB_OK);
    cr_assert_eq(res.created + res.updated + res.deleted, 0);
    cr_assert_eq(res.version, 4, "importing the same document again changes nothing");
    cJSON_Delete(doc);
    rk_rules_db_close(db);
}

Test(rules_db, rules_survive_a_reopen_and_migrations_are_recorded) {
    rk_rules_db_t *db = open_db();
    create(db, "persisted", 7);
    rk_rules_db_close(db);
    db = open_db();
    cr_assert_eq(stored_limit(db, "persisted"), 7);
    rk_rules_db_close(db);

    char err[256];
    sqlite3 *conn = rk_rules_db_connect(path, false, err, sizeof err);
    cr_assert_not_null(conn, "%s", err);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(conn, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), rk_rules_db_schema_version());
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(conn, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(conn);
}

Test(rules_db, a_database_newer_than_the_binary_is_refused) {
    sqlite3 *conn;
    cr_assert_eq(sqlite3_open(path, &conn), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(conn, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(conn);
    char err[256] = "";
    cr_assert_null(rk_rules_db_open(path, err, sizeof err));
    cr_assert(strstr(err, "newer") != NULL, "message: %s", err);
    cr_assert_eq(rk_rules_open(path, err, sizeof err), RK_ERR);
}

/* ---- the snapshot ------------------------------------------------------------------------ */

static void open_rules(void) {
    char err[256];
    if (rk_rules_open(path, err, sizeof err) != RK_OK)
        cr_fatal("rk_rules_open: %s", err);
}

static int64_t changes_seen, last_version_seen;
static void count_change(int64_t version, const char *rule_id, const char *action) {
    (void)rule_id;
    (void)action;
    changes_seen++;
    last_version_seen = version;
}

Test(rules_db, a_write_is_in_the_snapshot_as_soon_as_it_commits) {
    open_rules();
    rk_rules_set_change_listener(count_change);
    cr_assert_eq(rk_ruleset_count(rk_rules_current()), 0);
    const rk_ruleset_t *before = rk_rules_current();

    cJSON *c = canon("{\"id\":\"late\",\"algorithm\":\"token_bucket\",\"limit\":50,"
                     "\"window\":\"1s\",\"priority\":200}");
    cr_assert_eq(rk_rules_db_create(rk_rules_db_instance(), c, by("t"), NULL), RK_DB_OK);
    cJSON_Delete(c);
    c = canon("{\"id\":\"early\",\"algorithm\":\"gcra\",\"limit\":5,\"window_ms\":1000,"
              "\"burst\":2,\"priority\":10}");
    cr_assert_eq(rk_rules_db_create(rk_rules_db_instance(), c, by("t"), NULL), RK_DB_OK);
    cJSON_Delete(c);

    const rk_ruleset_t *set = rk_rules_current();
    cr_assert_eq(rk_ruleset_count(set), 2);
    cr_assert_eq(rk_ruleset_version(set), 2);
    cr_assert_str_eq(rk_ruleset_at(set, 0)->id, "early", "priority order");
    cr_assert_str_eq(rk_ruleset_at(set, 1)->id, "late");
    const rk_rule_t *late = rk_ruleset_find(set, "late");
    cr_assert_not_null(late);
    cr_assert_eq(late->limit.limit, 50);
    cr_assert_eq(late->limit.burst, 50);
    cr_assert_eq(late->limit.window_ms, 1000);
    cr_assert_eq(rk_ruleset_find(set, "early")->limit.burst, 2);
    cr_assert_null(rk_ruleset_find(set, "missing"));
    cr_assert_eq(changes_seen, 2);
    cr_assert_eq(last_version_seen, 2);
    /* a replaced snapshot stays readable for the grace period */
    cr_assert_eq(rk_ruleset_count(before), 0);
    rk_rules_close();
}

Test(rules_db, lookup_by_id_finds_every_rule_of_a_large_ruleset) {
    open_rules();
    cJSON *rules = cJSON_CreateArray();
    for (int i = 0; i < 500; i++) {
        char id[32];
        snprintf(id, sizeof id, "rule-%03d", (i * 7919) % 500);
        cJSON_AddItemToArray(rules, rule_with_limit(id, i + 1));
    }
    rk_import_result_t res;
    cr_assert_eq(rk_rules_db_import(rk_rules_db_instance(), rules, NULL, by("t"), &res), RK_DB_OK);
    cJSON_Delete(rules);
    cr_assert_eq(res.created, 500);
    const rk_ruleset_t *set = rk_rules_current();
    cr_assert_eq(rk_ruleset_count(set), 500);
    for (int i = 0; i < 500; i++) {
        char id[32];
        snprintf(id, sizeof id, "rule-%03d", i);
        const rk_rule_t *r = rk_ruleset_find(set, id);
        cr_assert_not_null(r, "%s", id);
        cr_assert_str_eq(r->id, id);
    }
    const char *missing[] = {"rule-500", "rule-", "rule-0000", "rule-00", "", "RULE-001"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++)
        cr_assert_null(rk_ruleset_find(set, missing[i]), "'%s' found", missing[i]);
    rk_rules_close();
}

Test(rules_db, another_processes_change_reaches_the_snapshot_within_a_second) {
    open_rules();
    cr_assert_eq(rk_rules_start_reload(), RK_OK);
    /* a second writer on the same file, as another ratekitd would be */
    rk_rules_db_t *other = open_db();
    cJSON *c = rule_with_limit("from-elsewhere", 9);
    cr_assert_eq(rk_rules_db_create(other, c, by("other"), NULL), RK_DB_OK);
    cJSON_Delete(c);

    int64_t start = rk_mono_ms();
    while (!rk_ruleset_find(rk_rules_current(), "from-elsewhere") && rk_mono_ms() - start < 1000)
        usleep(10000);
    const rk_rule_t *r = rk_ruleset_find(rk_rules_current(), "from-elsewhere");
    cr_assert_not_null(r, "not reloaded within 1 s");
    cr_assert_eq(r->limit.limit, 9);

    cr_assert_eq(rk_rules_db_delete(other, "from-elsewhere", "other", NULL), RK_DB_OK);
    start = rk_mono_ms();
    while (rk_ruleset_find(rk_rules_current(), "from-elsewhere") && rk_mono_ms() - start < 1000)
        usleep(10000);
    cr_assert_null(rk_ruleset_find(rk_rules_current(), "from-elsewhere"));
    rk_rules_db_close(other);
    rk_rules_close();
}

Test(rules_db, nothing_is_open_before_rk_rules_open) {
    cr_assert_eq(rk_ruleset_count(rk_rules_current()), 0);
    cr_assert_null(rk_ruleset_find(rk_rules_current(), "x"));
    cr_assert_null(rk_rules_db_instance());
}

/* ---- read-merge-write in one transaction ------------------------------------------- */

/* One field a build function sets on the rule as stored now. */
typedef struct {
    const char *field;
    cJSON *value;
} set_field_t;

static rk_db_status_t set_field(void *ctx, const cJSON *current, cJSON *errors, cJSON **canon) {
    const set_field_t *set = ctx;
    cJSON *rule = cJSON_Duplicate(current, true);
    cJSON_ReplaceItemInObjectCaseSensitive(rule, set->field, cJSON_Duplicate(set->value, true));
    *canon = rk_rule_canonical(rule, errors);
    cJSON_Delete(rule);
    return *canon ? RK_DB_OK : RK_DB_INVALID;
}

static rk_db_status_t update_field(rk_rules_db_t *db, const char *id, const char *field,
                                   cJSON *value, const rk_change_opts_t *opts, cJSON **stored) {
    set_field_t set = {field, value};
    rk_db_status_t rc = rk_rules_db_update(db, id, set_field, &set, opts, stored);
    cJSON_Delete(value);
    return rc;
}

#define PARALLEL_UPDATES 200

static void *describe_many(void *db) {
    static rk_change_opts_t opts = {.actor = "a"};
    for (int i = 1; i <= PARALLEL_UPDATES; i++) {
        char text[16];
        snprintf(text, sizeof text, "d%d", i);
        if (update_field(db, "api", "description", cJSON_CreateString(text), &opts, NULL))
            return "an update of the description failed";
    }
    return NULL;
}

static void *prioritize_many(void *db) {
    static rk_change_opts_t opts = {.actor = "b"};
    for (int i = 1; i <= PARALLEL_UPDATES; i++)
        if (update_field(db, "api", "priority", cJSON_CreateNumber(i), &opts, NULL))
            return "an update of the priority failed";
    return NULL;
}

/* The top-level fields a history entry changed, apart from its version and time. */
static int fields_changed(const cJSON *entry, const char **which) {
    const cJSON *before = cJSON_GetObjectItem(entry, "before");
    const cJSON *after = cJSON_GetObjectItem(entry, "after");
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, after) {
        if (strcmp(f->string, "version") && strcmp(f->string, "updated_at") &&
            !cJSON_Compare(f, cJSON_GetObjectItem(before, f->string), true)) {
            *which = f->string;
            n++;
        }
    }
    return n;
}

Test(rules_db, parallel_updates_of_different_fields_each_build_on_the_latest_version) {
    rk_rules_db_t *db = open_db();
    create(db, "api", 10);
    pthread_t a, b;
    void *why_a, *why_b;
    pthread_create(&a, NULL, describe_many, db);
    pthread_create(&b, NULL, prioritize_many, db);
    pthread_join(a, &why_a);
    pthread_join(b, &why_b);
    cr_assert_null(why_a, "%s", (char *)why_a);
    cr_assert_null(why_b, "%s", (char *)why_b);

    cJSON *r;
    cr_assert_eq(rk_rules_db_get(db, "api", &r), RK_DB_OK);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "description")->valuestring, "d200");
    cr_assert_eq(num(r, "priority"), PARALLEL_UPDATES, "no update was lost");
    cr_assert_eq(num(r, "version"), 1 + 2 * PARALLEL_UPDATES);
    cJSON_Delete(r);

    cJSON *history;
    cr_assert_eq(rk_rules_db_history(db, "api", &history), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(history), 1 + 2 * PARALLEL_UPDATES);
    for (int i = 0; i < 2 * PARALLEL_UPDATES; i++) {
        const cJSON *e = cJSON_GetArrayItem(history, i);
        const char *which = NULL;
        cr_assert_eq(fields_changed(e, &which), 1, "entry %d changed one field", i);
        bool own_field = !strcmp(which, "description") || !strcmp(which, "priority");
        cr_assert(own_field, "entry %d changed %s", i, which);
        cr_assert_eq(num(cJSON_GetObjectItem(e, "before"), "version"), num(e, "version") - 1);
    }
    cJSON_Delete(history);
    rk_rules_db_close(db);
}

Test(rules_db, a_dry_run_update_answers_the_rule_it_would_store_and_changes_nothing) {
    rk_rules_db_t *db = open_db();
    create(db, "api", 10);
    rk_change_opts_t opts = {.actor = "a", .dry_run = true};
    cJSON *stored = NULL;
    cr_assert_eq(update_field(db, "api", "limit", cJSON_CreateNumber(77), &opts, &stored),
                 RK_DB_OK);
    cr_assert_eq(num(stored, "limit"), 77);
    cr_assert_eq(num(stored, "version"), 2);
    cJSON_Delete(stored);
    cr_assert_eq(stored_limit(db, "api"), 10);
    cr_assert_eq(update_field(db, "nope", "limit", cJSON_CreateNumber(7), &opts, NULL),
                 RK_DB_NOT_FOUND);

    cJSON *list, *history;
    int64_t version;
    cr_assert_eq(rk_rules_db_list(db, &list, &version), RK_DB_OK);
    cr_assert_eq(version, 1);
    cJSON_Delete(list);
    cr_assert_eq(rk_rules_db_history(db, "api", &history), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(history), 1);
    cJSON_Delete(history);
    rk_rules_db_close(db);
}

/* ---- overrides checked again when their rule changes -------------------------------- */

/* An override row as rk_overrides_export answers it. */
static cJSON *override_row(const char *rule, const char *key, int limit, int64_t expires_at) {
    char text[512];
    snprintf(text, sizeof text,
             "{\"rule\":\"%s\",\"key\":\"%s\",\"limit\":%d,\"burst\":null,\"window_ms\":null,"
             "\"expires_at\":%s,\"note\":\"\",\"created_at\":1,\"updated_at\":1,"
             "\"updated_by\":\"t\"}",
             rule, key, limit, expires_at ? "1" : "null");
    return cJSON_Parse(text);
}

static void put_overrides(rk_rules_db_t *db, int limit) {
    cJSON *rows = cJSON_CreateArray();
    cJSON_AddItemToArray(rows, override_row("slog", "user:2", limit, 0));
    cJSON_AddItemToArray(rows, override_row("slog", "user:9", 9000000, 1 /* expired */));
    bool changed;
    cr_assert_eq(rk_overrides_replace(db, rows, &changed), RK_DB_OK);
    cJSON_Delete(rows);
}

static int64_t ruleset_version_of(rk_rules_db_t *db) {
    cJSON *list;
    int64_t version;
    cr_assert_eq(rk_rules_db_list(db, &list, &version), RK_DB_OK);
    cJSON_Delete(list);
    return version;
}

/* Asserts errors lists exactly one problem, of field. */
static void assert_one_error(cJSON *errors, const char *field) {
    char *listed = cJSON_PrintUnformatted(errors);
    cr_assert_eq(cJSON_GetArraySize(errors), 1, "%s", listed);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 0), "field")->valuestring,
                     field, "%s", listed);
    cJSON_free(listed);
}

Test(rules_db, a_change_its_overrides_no_longer_fit_is_refused_and_stores_nothing) {
    rk_rules_db_t *db = open_db();
    cJSON *tb =
        canon("{\"id\":\"slog\",\"algorithm\":\"token_bucket\",\"limit\":5,\"window\":\"1h\"}");
    cJSON *cc =
        canon("{\"id\":\"slog\",\"algorithm\":\"concurrency\",\"limit\":5,\"window\":\"1h\"}");
    cr_assert_eq(rk_rules_db_create(db, tb, by("a"), NULL), RK_DB_OK);
    put_overrides(db, 5000000);
    int64_t before = ruleset_version_of(db);

    cJSON *errors = cJSON_CreateArray();
    rk_change_opts_t opts = {.actor = "a", .errors = errors};
    cr_assert_eq(rk_rules_db_replace(db, cc, &opts, NULL), RK_DB_INVALID);
    assert_one_error(errors, "overrides.user:2.limit");
    cJSON_DeleteItemFromArray(errors, 0);
    cr_assert_eq(
        update_field(db, "slog", "algorithm", cJSON_CreateString("sliding_log"), &opts, NULL),
        RK_DB_INVALID);
    assert_one_error(errors, "overrides.user:2.limit");
    cJSON_DeleteItemFromArray(errors, 0);
    cJSON *doc = cJSON_CreateArray();
    cJSON_AddItemToArray(doc, cJSON_Duplicate(cc, true));
    rk_import_result_t res;
    cr_assert_eq(rk_rules_db_import(db, doc, NULL, &opts, &res), RK_DB_INVALID);
    assert_one_error(errors, "rules[0].overrides.user:2.limit");
    cJSON_DeleteItemFromArray(errors, 0);
    cr_assert_eq(ruleset_version_of(db), before, "nothing was stored");
    cJSON *history;
    cr_assert_eq(rk_rules_db_history(db, "slog", &history), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(history), 1);
    cJSON_Delete(history);

    put_overrides(db, 9000); /* within concurrency's bounds: the expired one does not count */
    cr_assert_eq(rk_rules_db_replace(db, cc, &opts, NULL), RK_DB_OK);
    cr_assert_eq(cJSON_GetArraySize(errors), 0);
    cJSON_Delete(errors);
    cJSON_Delete(doc);
    cJSON_Delete(cc);
    cJSON_Delete(tb);
    rk_rules_db_close(db);
}

/* The keys of the stored overrides, "rule/key" joined by spaces, in table order. */
static void stored_override_keys(rk_rules_db_t *db, char *out, size_t cap) {
    cJSON *rows = rk_overrides_export(db);
    cr_assert_not_null(rows);
    out[0] = '\0';
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s/%s", n ? " " : "",
                 cJSON_GetObjectItem(row, "rule")->valuestring,
                 cJSON_GetObjectItem(row, "key")->valuestring);
    }
    cJSON_Delete(rows);
}

Test(rules_db, an_import_with_overrides_makes_them_exactly_the_documents) {
    rk_rules_db_t *db = open_db();
    create(db, "a", 10);
    create(db, "gone", 10);
    cJSON *stored = cJSON_CreateArray();
    cJSON_AddItemToArray(stored, override_row("a", "k:1", 5, 0));
    cJSON_AddItemToArray(stored, override_row("a", "k:2", 5, 0));
    cJSON_AddItemToArray(stored, override_row("a", "k:3", 5, 1 /* expired */));
    cJSON_AddItemToArray(stored, override_row("gone", "k:1", 5, 0));
    bool changed;
    cr_assert_eq(rk_overrides_replace(db, stored, &changed), RK_DB_OK);
    cJSON_Delete(stored);

    /* rows as the import API makes them: sorted by rule then key */
    cJSON *rules = cJSON_CreateArray();
    cJSON_AddItemToArray(rules, rule_with_limit("a", 10));
    cJSON_AddItemToArray(rules, rule_with_limit("b", 10));
    cJSON *rows = cJSON_Parse(
        "[{\"rule\":\"a\",\"key\":\"k:2\",\"limit\":7,\"burst\":null,\"window_ms\":null,"
        "\"expires_at\":null,\"note\":\"\"},"
        "{\"rule\":\"a\",\"key\":\"k:3\",\"limit\":5,\"burst\":null,\"window_ms\":null,"
        "\"expires_at\":null,\"note\":\"\"},"
        "{\"rule\":\"b\",\"key\":\"k:1\",\"limit\":5,\"burst\":null,\"window_ms\":null,"
        "\"expires_at\":null,\"note\":\"x\"}]");
    int64_t before = ruleset_version_of(db);
    rk_import_result_t res;
    cr_assert_eq(rk_rules_db_import(db, rules, rows, trial("t"), &res), RK_DB_OK);
    char keys[256];
    stored_override_keys(db, keys, sizeof keys);
    cr_assert_str_eq(keys, "a/k:1 a/k:2 a/k:3 gone/k:1", "a dry run changes nothing");

    cr_assert_eq(rk_rules_db_import(db, rules, rows, by("t"), &res), RK_DB_OK);
    /* k:3 replaces an expired override: new; gone/k:1 goes with its rule, a/k:1 alone */
    cr_assert_eq(res.overrides.created, 2);
    cr_assert_eq(res.overrides.updated, 1);
    cr_assert_eq(res.overrides.deleted, 2);
    cr_assert_eq(res.version, before + 1, "one import is one ruleset version");
    stored_override_keys(db, keys, sizeof keys);
    cr_assert_str_eq(keys, "a/k:2 a/k:3 b/k:1");

    cr_assert_eq(rk_rules_db_import(db, rules, rows, by("t"), &res), RK_DB_OK);
    cr_assert_eq(res.overrides.created + res.overrides.updated + res.overrides.deleted, 0);
    cr_assert_eq(res.version, before + 1, "the same document again changes nothing");
    cJSON_Delete(rows);
    cJSON_Delete(rules);
    rk_rules_db_close(db);
}
