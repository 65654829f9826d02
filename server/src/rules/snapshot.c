/*
 * snapshot.c — the compiled, immutable ruleset the check path reads, and
 * the reload that keeps it in step with the SQLite file.
 *
 * Readers: rk_rules_current() is one atomic load (acquire); no lock, no
 * reference count. Writers build a whole new snapshot, store its pointer
 * (release), and put the old one on a retired list; the reload thread frees
 * it RK_RULES_GRACE_MS later, a bound no check comes near.
 *
 * Two paths publish: a change made by this process rebuilds from the
 * writer's connection right after its commit (under the writer's lock, so
 * snapshots follow commit order); the reload thread polls PRAGMA
 * data_version every 200 ms on its own connection and rebuilds when
 * another process moved the ruleset version on. A snapshot never replaces
 * a newer one (the ruleset version only grows).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../log.h"
#include "rule.h"
#include "rules.h"
#include "rules_db.h"
#include "sync.h"

#define RELOAD_POLL_MS 200

struct rk_ruleset {
    int64_t version;
    size_t n;
    rk_rule_t *rules;        /* priority order (then id) */
    const rk_rule_t **by_id; /* the same rules, sorted by id for rk_ruleset_find */
};

typedef struct retired {
    rk_ruleset_t *set;
    int64_t retired_mono_ms;
    struct retired *next;
} retired_t;

typedef void (*change_listener_t)(int64_t version, const char *rule_id, const char *action);

static struct {
    rk_rules_db_t *db;
    char *path;
    _Atomic(rk_ruleset_t *) current;
    pthread_mutex_t publish_lock; /* guards the version check, the swap and retired */
    retired_t *retired;
    _Atomic(change_listener_t) listener;
    /* the reload thread */
    pthread_t thread;
    bool thread_running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    /* the database file as opened: SQLite writes to it, whatever the path names later */
    bool file_known;
    dev_t file_dev;
    ino_t file_ino;
} g = {.publish_lock = PTHREAD_MUTEX_INITIALIZER, .stop_lock = PTHREAD_MUTEX_INITIALIZER};

static const rk_ruleset_t empty_set = {0, 0, NULL, NULL};

rk_rules_db_t *rk_rules_db_instance(void) {
    return g.db;
}

/* ---- building ---------------------------------------------------------------------- */

/* Frees the overrides attached to a compiled rule (rk_rule_free leaves them). */
static void overrides_free(rk_rule_t *rule) {
    for (size_t i = 0; i < rule->noverrides; i++)
        free(rule->overrides[i].key);
    free(rule->overrides);
    rule->overrides = NULL;
    rule->noverrides = 0;
}

static void ruleset_free(rk_ruleset_t *set) {
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        overrides_free(&set->rules[i]);
        rk_rule_free(&set->rules[i]);
    }
    free(set->rules);
    free(set->by_id);
    free(set);
}

typedef struct {
    rk_rule_t *rules;
    size_t n, cap;
    sqlite3 *conn;          /* in the load's read transaction */
    sqlite3_stmt *override; /* the overrides of one rule, prepared on first use */
} builder_t;

/*
 * Attaches the overrides of rule (read from b's connection, inside the same
 * read transaction as the rule), each limit resolved from the rule's: a
 * burst left to its default follows the override's limit, as for plans.
 * canon is the rule's canonical body. RK_ERR on OOM or a SQLite failure.
 */
static rk_status_t load_overrides(builder_t *b, rk_rule_t *rule, const cJSON *canon) {
    if (!b->override &&
        sqlite3_prepare_v2(b->conn,
                           "SELECT key, \"limit\", burst, window_ms, coalesce(expires_at, 0) "
                           "FROM rule_overrides WHERE rule_id = ?1 ORDER BY key",
                           -1, &b->override, NULL) != SQLITE_OK)
        return RK_ERR;
    sqlite3_stmt *st = b->override;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, rule->id, -1, SQLITE_STATIC);
    bool burst_follows = !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(canon, "burst"));
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (rule->noverrides == cap) {
            size_t more = cap ? 2 * cap : 4;
            rk_override_t *grown = realloc(rule->overrides, more * sizeof *grown);
            if (!grown)
                return RK_ERR;
            rule->overrides = grown;
            cap = more;
        }
        rk_override_t *o = &rule->overrides[rule->noverrides];
        o->key = strdup((const char *)sqlite3_column_text(st, 0));
        if (!o->key)
            return RK_ERR;
        rule->noverrides++;
        o->limit = rule->limit;
        o->limit.limit = sqlite3_column_int64(st, 1);
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            o->limit.window_ms = sqlite3_column_int64(st, 3);
        if (sqlite3_column_type(st, 2) != SQLITE_NULL)
            o->limit.burst = sqlite3_column_int64(st, 2);
        else if (burst_follows)
            o->limit.burst = o->limit.limit;
        o->expires_ms = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    return step == SQLITE_DONE ? RK_OK : RK_ERR;
}

/* Adds one stored rule to the builder; a rule that does not compile is skipped. */
static rk_status_t add_row(void *ctx, const char *body, int64_t version) {
    builder_t *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        rk_rule_t *rules = realloc(b->rules, cap * sizeof *rules);
        if (!rules)
            return RK_ERR;
        b->rules = rules;
        b->cap = cap;
    }
    cJSON *canon = cJSON_Parse(body);
    rk_status_t rc = canon ? rk_rule_compile(canon, version, &b->rules[b->n]) : RK_ERR;
    if (rc == RK_OK && load_overrides(b, &b->rules[b->n], canon) != RK_OK) {
        overrides_free(&b->rules[b->n]);
        rk_rule_free(&b->rules[b->n]);
        cJSON_Delete(canon);
        rk_error("rules: cannot read the overrides of a rule: %s", sqlite3_errmsg(b->conn));
        return RK_ERR;
    }
    cJSON_Delete(canon);
    if (rc == RK_OK)
        b->n++;
    else
        rk_warn("rules: a stored rule does not compile, skipped: %.200s", body);
    return RK_OK;
}

static int by_priority(const void *a, const void *b) {
    const rk_rule_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int by_id(const void *a, const void *b) {
    const rk_rule_t *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* Reads every rule from conn and compiles a new snapshot (owned by the caller). */
static rk_ruleset_t *build(sqlite3 *conn) {
    builder_t b = {.conn = conn};
    int64_t version = 0;
    rk_ruleset_t *set = calloc(1, sizeof *set);
    rk_status_t loaded = set ? rk_rules_db_load(conn, add_row, &b, &version) : RK_ERR;
    sqlite3_finalize(b.override);
    if (loaded != RK_OK)
        goto fail;
    set->version = version;
    set->n = b.n;
    set->rules = b.rules; /* the set owns them now: ruleset_free frees them on failure */
    b.rules = NULL;
    b.n = 0;
    if (set->n) {
        qsort(set->rules, set->n, sizeof *set->rules, by_priority);
        set->by_id = malloc(set->n * sizeof *set->by_id);
        if (!set->by_id)
            goto fail;
        for (size_t i = 0; i < set->n; i++)
            set->by_id[i] = &set->rules[i];
        qsort(set->by_id, set->n, sizeof *set->by_id, by_id);
    }
    return set;
fail:
    for (size_t i = 0; i < b.n; i++) {
        overrides_free(&b.rules[i]);
        rk_rule_free(&b.rules[i]);
    }
    free(b.rules);
    ruleset_free(set);
    return NULL;
}

/* Makes next the live snapshot unless the live one is as new; takes ownership. */
static bool publish(rk_ruleset_t *next) {
    pthread_mutex_lock(&g.publish_lock);
    rk_ruleset_t *cur = atomic_load_explicit(&g.current, memory_order_relaxed);
    if (cur && next->version <= cur->version) {
        pthread_mutex_unlock(&g.publish_lock);
        ruleset_free(next);
        return false;
    }
    atomic_store_explicit(&g.current, next, memory_order_release);
    if (cur) {
        retired_t *r = malloc(sizeof *r);
        if (r) {
            *r = (retired_t){cur, rk_mono_ms(), g.retired};
            g.retired = r;
        } else {
            rk_error("rules: out of memory retiring a snapshot; it is leaked");
        }
    }
    pthread_mutex_unlock(&g.publish_lock);
    return true;
}

/* Frees the retired snapshots older than the grace period (all with force). */
static void free_retired(bool force) {
    int64_t now = rk_mono_ms();
    pthread_mutex_lock(&g.publish_lock);
    retired_t **p = &g.retired;
    while (*p) {
        retired_t *r = *p;
        if (force || now - r->retired_mono_ms >= RK_RULES_GRACE_MS) {
            *p = r->next;
            ruleset_free(r->set);
            free(r);
        } else {
            p = &r->next;
        }
    }
    pthread_mutex_unlock(&g.publish_lock);
}

static void notify(int64_t version, const char *rule_id, const char *action) {
    change_listener_t fn = atomic_load(&g.listener);
    if (fn)
        fn(version, rule_id, action);
}

/* After a commit by this process (writer's lock held): rebuild, publish, tell. */
static void on_commit(rk_rules_db_t *db, void *ctx, int64_t version, const char *rule_id,
                      const char *action) {
    (void)ctx;
    rk_ruleset_t *next = build(rk_rules_db_conn(db));
    if (next)
        publish(next);
    else
        rk_error("rules: cannot rebuild the snapshot after a change; the reload retries");
    notify(version, rule_id, action);
    rk_rules_sync_committed(version);
}

/* Notes which file the path names once SQLite has opened (and so created) it. */
static void remember_file(void) {
    struct stat st;
    g.file_known = stat(g.path, &st) == 0;
    g.file_dev = st.st_dev;
    g.file_ino = st.st_ino;
}

/* ---- the public interface -------------------------------------------------------------- */

rk_status_t rk_rules_open(const char *db_path, char *err, size_t errlen) {
    g.db = rk_rules_db_open(db_path, err, errlen);
    if (!g.db)
        return RK_ERR;
    g.path = strdup(db_path);
    pthread_mutex_lock(&g.stop_lock);
    g.stopping = false;
    pthread_mutex_unlock(&g.stop_lock);
    rk_ruleset_t *first = build(rk_rules_db_conn(g.db));
    if (!g.path || !first) {
        snprintf(err, errlen, "cannot read the rules: %s", sqlite3_errmsg(rk_rules_db_conn(g.db)));
        ruleset_free(first);
        rk_rules_close();
        return RK_ERR;
    }
    publish(first);
    remember_file();
    rk_rules_db_on_commit(g.db, on_commit, NULL);
    return RK_OK;
}

/* Waits up to ms for rk_rules_close; true when asked to stop. */
static bool wait_stop(int64_t ms) {
    struct timespec until;
    rk_timespec_in(&until, CLOCK_REALTIME, ms);
    pthread_mutex_lock(&g.stop_lock);
    while (!g.stopping) {
        if (pthread_cond_timedwait(&g.stop_cond, &g.stop_lock, &until) != 0)
            break;
    }
    bool stop = g.stopping;
    pthread_mutex_unlock(&g.stop_lock);
    return stop;
}

bool rk_rules_db_moved(void) {
    struct stat st;
    if (!g.file_known)
        return false;
    /* As SQLite's own SQLITE_FCNTL_HAS_MOVED: gone, or another file at the path. */
    return stat(g.path, &st) != 0 || st.st_dev != g.file_dev || st.st_ino != g.file_ino;
}

/*
 * Says when the database file was deleted or replaced under the running
 * process (SQLite goes on writing to the file it opened, so every change
 * from then on would be lost at the next start, and the admin plane refuses
 * them), and when it is back in place.
 */
static void log_if_moved(bool *was_moved) {
    bool moved = rk_rules_db_moved();
    if (moved == *was_moved)
        return;
    if (moved)
        rk_error("rules: the database file %s was deleted or replaced while running; changes "
                 "are refused from now on, since they would be lost at restart: put the file "
                 "back, or restart",
                 g.path);
    else
        rk_info("rules: the database file %s is back in place; changes are accepted again", g.path);
    *was_moved = moved;
}

/*
 * The reload thread: notices commits of other processes (and of this one,
 * which are then already published) by PRAGMA data_version, rebuilds when
 * the ruleset version moved on, and frees retired snapshots.
 */
static void *reload_main(void *arg) {
    sqlite3 *reader = arg;
    int64_t seen = -1;
    bool moved = false;
    while (!wait_stop(RELOAD_POLL_MS)) {
        log_if_moved(&moved);
        int64_t dv = rk_rules_db_data_version(reader);
        if (dv >= 0 && dv != seen) {
            int64_t stored = rk_rules_db_read_version(reader);
            int64_t live = rk_ruleset_version(rk_rules_current());
            bool ok = stored >= 0;
            if (ok && stored > live) {
                rk_ruleset_t *next = build(reader);
                ok = next != NULL;
                if (next && publish(next)) {
                    rk_info("rules: reloaded ruleset version %lld", (long long)stored);
                    notify(stored, NULL, "reload");
                }
            }
            if (ok)
                seen = dv; /* on failure, try again on the next tick */
        }
        free_retired(false);
    }
    sqlite3_close(reader);
    return NULL;
}

rk_status_t rk_rules_start_reload(void) {
    if (!g.db || g.thread_running)
        return g.db ? RK_OK : RK_ERR;
    char err[256];
    sqlite3 *reader = rk_rules_db_connect(g.path, false, err, sizeof err);
    if (!reader) {
        rk_error("rules: cannot open the reload connection: %s", err);
        return RK_ERR;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_cond_init(&g.stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&g.thread, NULL, reload_main, reader) != 0) {
        sqlite3_close(reader);
        pthread_cond_destroy(&g.stop_cond);
        rk_error("rules: cannot start the reload thread");
        return RK_ERR;
    }
    g.thread_running = true;
    return RK_OK;
}

void rk_rules_close(void) {
    if (g.thread_running) {
        pthread_mutex_lock(&g.stop_lock);
        g.stopping = true;
        pthread_cond_signal(&g.stop_cond);
        pthread_mutex_unlock(&g.stop_lock);
        pthread_join(g.thread, NULL);
        pthread_cond_destroy(&g.stop_cond);
        g.thread_running = false;
    }
    rk_rules_db_close(g.db);
    g.db = NULL;
    g.file_known = false;
    free(g.path);
    g.path = NULL;
    free_retired(true);
    ruleset_free(atomic_exchange(&g.current, NULL));
}

void rk_rules_set_change_listener(void (*fn)(int64_t version, const char *rule_id,
                                             const char *action)) {
    atomic_store(&g.listener, fn);
}

const rk_ruleset_t *rk_rules_current(void) {
    const rk_ruleset_t *set = atomic_load_explicit(&g.current, memory_order_acquire);
    return set ? set : &empty_set;
}

const rk_rule_t *rk_ruleset_find(const rk_ruleset_t *set, const char *id) {
    if (!set || !id || set->n == 0)
        return NULL;
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, set->by_id[mid]->id);
        if (c == 0)
            return set->by_id[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t rk_ruleset_count(const rk_ruleset_t *set) {
    return set ? set->n : 0;
}

const rk_rule_t *rk_ruleset_at(const rk_ruleset_t *set, size_t i) {
    return set && i < set->n ? &set->rules[i] : NULL;
}

int64_t rk_ruleset_version(const rk_ruleset_t *set) {
    return set ? set->version : 0;
}

const rk_override_t *rk_rule_override(const rk_rule_t *rule, const char *key, int64_t now_ms) {
    size_t lo = 0, hi = rule->noverrides;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, rule->overrides[mid].key);
        if (c == 0) {
            const rk_override_t *o = &rule->overrides[mid];
            return o->expires_ms && o->expires_ms <= now_ms ? NULL : o;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
