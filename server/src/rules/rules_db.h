/*
 * rules_db.h — the rules in SQLite: the current rules, their history, the
 * global ruleset version, and the migrations of schema/.
 *
 * One rk_rules_db_t is the process's writer: one connection behind a mutex,
 * used by the admin threads. Every change is one IMMEDIATE transaction that
 * writes the rule, appends its history and bumps the ruleset version; an
 * acknowledged change is on disk (WAL, synchronous=FULL).
 *
 * Rules cross this interface as cJSON: canonical bodies in (rule.h), stored
 * rules out (the canonical body plus version, created_at, updated_at).
 */
#ifndef RK_RULES_DB_H
#define RK_RULES_DB_H

#include <sqlite3.h>
#include <cjson/cJSON.h>

#include "../common.h"

typedef enum {
    RK_DB_OK = 0,
    RK_DB_NOT_FOUND,    /* no such rule (or version) */
    RK_DB_CONFLICT,     /* the id exists already; a version that deleted the rule */
    RK_DB_INVALID,      /* a restored version no longer validates (errors filled) */
    RK_DB_PRECONDITION, /* the rule is not in the state the change expects (if_match) */
    RK_DB_ERROR         /* SQLite failed (busy past the timeout, disk, ...) */
} rk_db_status_t;

typedef struct rk_rules_db rk_rules_db_t;

/*
 * Called after each commit, with the writer's lock still held (so that
 * snapshots are published in commit order): the new ruleset version, the
 * rule id (NULL for an import) and the action. The connection may be read
 * with rk_rules_db_load from inside the callback.
 */
typedef void (*rk_rules_db_commit_fn)(rk_rules_db_t *db, void *ctx, int64_t version,
                                      const char *rule_id, const char *action);

/* Counts of the overrides an import changed (deleted: those not expired). */
typedef struct {
    int created, updated, deleted;
} rk_override_counts_t;

/* Counts of an import. */
typedef struct {
    int created, updated, deleted;
    rk_override_counts_t overrides; /* when the import carried overrides */
    int64_t version;                /* the ruleset version after it */
} rk_import_result_t;

/*
 * Opens one connection with ratekit's settings (WAL, synchronous=FULL,
 * busy_timeout 5000, foreign keys). With migrate, creates the file and
 * applies the embedded migrations; a database newer than this binary is
 * refused. NULL with a message in err on failure; close with sqlite3_close.
 */
sqlite3 *rk_rules_db_connect(const char *path, bool migrate, char *err, size_t errlen);

/* The schema version this binary applies (the number of embedded migrations). */
int rk_rules_db_schema_version(void);

/* PRAGMA data_version of conn: changes when another connection commits. */
int64_t rk_rules_db_data_version(sqlite3 *conn);
/* The ruleset version stored in meta; -1 on error. */
int64_t rk_rules_db_read_version(sqlite3 *conn);
/* A small named value of meta other than the ruleset version (absent when
 * there is none; -1 on error), and its update; rules/sync.c keeps there what
 * it has published, so that a restart knows what it has not. */
int64_t rk_rules_db_meta_get(rk_rules_db_t *db, const char *key, int64_t absent);
rk_status_t rk_rules_db_meta_set(rk_rules_db_t *db, const char *key, int64_t value);
/* The ruleset document rules/sync.c last had in common with Redis (its
 * merge's base), kept for a restart: stored (body NULL forgets it), and read
 * back as a new string (NULL when none is kept, or on error). */
rk_status_t rk_rules_db_sync_base_set(rk_rules_db_t *db, const char *body);
char *rk_rules_db_sync_base_get(rk_rules_db_t *db);

/*
 * Reads every rule in one read transaction, calling row(ctx, body, version)
 * with each canonical body (a NUL-terminated JSON text valid during the
 * call), and stores the ruleset version. RK_ERR if SQLite or row fails.
 */
rk_status_t rk_rules_db_load(sqlite3 *conn,
                             rk_status_t (*row)(void *ctx, const char *body, int64_t version),
                             void *ctx, int64_t *ruleset_version);

/* The writer. */
/* The process's writer, opened by rk_rules_open (snapshot.c); NULL before. */
rk_rules_db_t *rk_rules_db_instance(void);
rk_rules_db_t *rk_rules_db_open(const char *path, char *err, size_t errlen);
void rk_rules_db_close(rk_rules_db_t *db);
void rk_rules_db_on_commit(rk_rules_db_t *db, rk_rules_db_commit_fn fn, void *ctx);
/* The writer's connection, for use inside the commit callback only. */
sqlite3 *rk_rules_db_conn(rk_rules_db_t *db);

/* Reads. *out is a new cJSON owned by the caller. */
rk_db_status_t rk_rules_db_get(rk_rules_db_t *db, const char *id, cJSON **out);
/* {"rules": [...] sorted by id} plus the ruleset version. */
rk_db_status_t rk_rules_db_list(rk_rules_db_t *db, cJSON **rules, int64_t *version);
/* The history of a rule, newest first; NOT_FOUND if it never existed. */
rk_db_status_t rk_rules_db_history(rk_rules_db_t *db, const char *id, cJSON **out);

/* How one change of a rule is made. */
typedef struct {
    const char *actor; /* who makes it */
    bool dry_run;      /* all but the commit: *stored is what would be stored */
    cJSON *errors;     /* INVALID: one {field, message} per problem (NULL: not listed) */
    /* An HTTP If-Match: the rule's tags (rk_rule_etag) one of which it must
     * have now, or "*" (it must exist); NULL: any state. PRECONDITION otherwise. */
    const char *if_match;
} rk_change_opts_t;

/*
 * Makes the new canonical body of a rule from its canonical body as stored
 * now (NULL when the rule does not exist), inside the change's transaction,
 * so that it builds on the latest version. RK_DB_OK with *canon (a new
 * cJSON), or the status refusing the change (INVALID with errors appended).
 */
typedef rk_db_status_t (*rk_rules_db_build_fn)(void *ctx, const cJSON *current, cJSON *errors,
                                               cJSON **canon);

/*
 * Changes. Each reads what it builds on, checks, and writes in one
 * IMMEDIATE transaction, so that parallel changes of one rule are applied
 * one after the other and each gets its own history entry. A new body is
 * refused (INVALID, nothing stored) when an override of the rule that has
 * not expired no longer fits it: the override's values must be valid in
 * the rule, as when the override was put (field "overrides.<key>.<field>").
 * canon is a canonical rule (rk_rule_canonical); *stored, when asked for,
 * receives the rule as stored.
 */
rk_db_status_t rk_rules_db_create(rk_rules_db_t *db, const cJSON *canon,
                                  const rk_change_opts_t *opts, cJSON **stored);
rk_db_status_t rk_rules_db_replace(rk_rules_db_t *db, const cJSON *canon,
                                   const rk_change_opts_t *opts, cJSON **stored);
/* Changes an existing rule (NOT_FOUND otherwise) to what build(ctx, ...) makes of it: a PATCH. */
rk_db_status_t rk_rules_db_update(rk_rules_db_t *db, const char *id, rk_rules_db_build_fn build,
                                  void *ctx, const rk_change_opts_t *opts, cJSON **stored);
rk_db_status_t rk_rules_db_delete(rk_rules_db_t *db, const char *id, const char *actor,
                                  const char *if_match);
/*
 * Makes the rule what it was after `version`, as a new version (also for a
 * deleted rule). NOT_FOUND for an unknown version, CONFLICT for a version
 * that deleted the rule, INVALID (with errors) if it no longer validates.
 */
rk_db_status_t rk_rules_db_restore(rk_rules_db_t *db, const char *id, int64_t version,
                                   const char *actor, cJSON **stored, cJSON *errors);
/*
 * Runs fn(conn, ctx) on the writer's connection under its lock. With an
 * action, inside one IMMEDIATE transaction that also bumps the ruleset
 * version: committed when fn answers RK_DB_OK (the commit listener is then
 * told (version, rule_id, action), so every snapshot picks the change up),
 * rolled back otherwise. Without (NULL), a plain read. Answers fn's status.
 * For data that lives beside the rules and is compiled into the snapshot
 * (the per-key overrides).
 */
rk_db_status_t rk_rules_db_run(rk_rules_db_t *db, const char *rule_id, const char *action,
                               rk_db_status_t (*fn)(sqlite3 *conn, void *ctx), void *ctx);

/*
 * The per-key overrides as a whole, for instances sharing only Redis
 * (overrides_db.c). rk_overrides_export answers every row as stored (times
 * in epoch ms) as a new cJSON array, NULL when the database fails.
 * rk_overrides_row_valid tells whether a row of another instance's export
 * has every field of a stored override. rk_overrides_replace makes the
 * table exactly rows (each valid; those of rules unknown here are left out)
 * as one change of the ruleset; *changed false when it already was.
 */
cJSON *rk_overrides_export(rk_rules_db_t *db);
bool rk_overrides_row_valid(const cJSON *row);
rk_db_status_t rk_overrides_replace(rk_rules_db_t *db, const cJSON *rows, bool *changed);

/*
 * Makes the overrides exactly rows, on conn inside the caller's transaction
 * (a rules' import): rows are {rule, key, limit, burst, window_ms,
 * expires_at (epoch ms), note}, burst, window_ms and expires_at null when
 * not set, sorted by rule then key (strcmp), each once; a new or changed one is stamped
 * now_ms and actor, an unchanged one is left alone. Counts what it changed
 * in *n; ERROR when SQLite fails.
 */
rk_db_status_t rk_overrides_import(sqlite3 *conn, const cJSON *rows, const char *actor,
                                   int64_t now_ms, rk_override_counts_t *n);

/*
 * The rule as one client's override makes it: a copy of rule (canonical or
 * as stored) with limit, and burst and the window where given (neither
 * NULL nor a JSON null), put in. rk_rule_canonical of it checks the
 * override's values with the rule's own bounds. A new cJSON.
 */
cJSON *rk_override_apply(const cJSON *rule, const cJSON *limit, const cJSON *burst,
                         const cJSON *window, const cJSON *window_ms);
/*
 * Checks that every override of the rule canon (a canonical rule) that has
 * not expired at now_ms fits it, on conn inside the caller's transaction.
 * INVALID with one error per misfit, its field named prefix +
 * "overrides.<key>.<field>"; ERROR when SQLite fails.
 */
rk_db_status_t rk_overrides_fit(sqlite3 *conn, const cJSON *canon, int64_t now_ms,
                                const char *prefix, cJSON *errors);

/*
 * Replaces the whole ruleset with rules (an array of canonical rules with
 * distinct ids) in one transaction: new ids are created, changed ones
 * updated, absent ones deleted; identical ones are left alone.
 * With overrides (rows for rk_overrides_import, each fitting its rule of
 * rules), the overrides become exactly those, in the same transaction.
 * Without (NULL), the stored ones stay with their rules, and a changed rule
 * they no longer fit refuses the whole import (INVALID, each misfit in
 * errors as "rules[<index>].overrides.<key>.<field>"). With opts->dry_run,
 * counts and rolls back.
 */
rk_db_status_t rk_rules_db_import(rk_rules_db_t *db, const cJSON *rules, const cJSON *overrides,
                                  const rk_change_opts_t *opts, rk_import_result_t *result);
/*
 * The same import, made only if the ruleset version is still
 * expected_version when its transaction starts (CONFLICT otherwise, nothing
 * changed): for the Redis sync, which must not overwrite a local change it
 * has not published yet. It does not check the overrides: the document
 * brings the other instance's, which were checked there against these
 * rules and replace the local ones next (rk_overrides_replace).
 */
rk_db_status_t rk_rules_db_import_at(rk_rules_db_t *db, const cJSON *rules, const char *actor,
                                     int64_t expected_version, rk_import_result_t *result);

#endif
