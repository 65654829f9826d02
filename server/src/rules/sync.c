/*
 * sync.c — see sync.h.
 *
 * Two threads, each with its own hiredis context (a context is not
 * thread-safe, and one in SUBSCRIBE mode can issue no other command):
 *
 * - the subscriber SUBSCRIBEs to <prefix>:ruleset and, on a message whose
 *   version is newer than the one applied, wakes the worker; it reconnects
 *   with backoff and asks the worker to read the key after each reconnect
 *   (messages sent meanwhile are lost);
 * - the worker publishes after a local commit, and reads the key when woken
 *   and every RK_SYNC_POLL_MS; it imports what is newer.
 *
 * On a Redis Cluster the subscriber connects to the master owning the key
 * (rk_redis_cluster_connect_for_key; a PUBLISH reaches the subscribers of
 * every node, and after a failover the reconnection finds the new owner),
 * and the worker's GET and EVAL go through the cluster store, which routes
 * them to that master and follows MOVED and ASK.
 *
 * The document in Redis reads {"version": N, "lineage": ..., "origin": ...,
 * "ruleset_version": ..., "exported_at": ..., "rules": [...], "overrides":
 * [...], "tokens": [...], "lists": [...]}, "version" always first (a
 * document without "overrides", "tokens" or "lists" leaves them alone): the
 * publishing script reads the current N from the text and writes N+1, so
 * versions are ordered by Redis whichever instance publishes. The last
 * published document is the ruleset of every instance; an instance with a
 * change of its own that finds a newer document than the one it last
 * published or applied (its base) merges the two (merge.h): that
 * document's changes are taken, its own kept, and the result published.
 */
#include "sync.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../auth/tokens.h"
#include "../lists/lists.h"
#include "../log.h"
#include "../store/store.h"
#include "merge.h"
#include "rule.h"
#include "rules.h"
#include "rules_db.h"

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 5000 /* a whole ruleset may be a few MiB */
#define BACKOFF_MIN_MS 100
#define LISTEN_POLL_MS 250

/* What meta keeps for a restart (rules_db.h): the ruleset version last
 * published or applied, and whether lists or tokens changed since. */
#define META_SYNCED "sync_ruleset_version"
#define META_UNPUBLISHED "sync_unpublished"

/*
 * KEYS[1] the document; ARGV[1] the document without its opening brace;
 * ARGV[2] "1" to write only where Redis holds no document ({0, ""}
 * answered); ARGV[3] a new lineage, taken when Redis holds no document (a
 * new Redis, or one restarted without persistence or flushed: versions start
 * again from 1, and the lineage tells the instances so); ARGV[4] and ARGV[5]
 * the lineage and the version the publisher last read. A document the
 * publisher has not read (newer, or of another lineage) is not overwritten
 * ({-1, ""}): what it exported may be older than what it would replace (two
 * instances sharing one SQLite file, the other one's change published
 * meanwhile), so it reads first, then exports again. A version below the
 * one the publisher read (a failover to a replica that lagged) is followed
 * by one above it. Answers {version, lineage}.
 */
static const char publish_script[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and ARGV[2] == '1' then return {0, ''} end\n"
    "local v, e = 0, ARGV[3]\n"
    "if cur then\n"
    "  v = tonumber(string.match(cur, '^{\"version\":(%d+)')) or 0\n"
    "  local l = string.match(cur, '^{\"version\":%d+,\"lineage\":\"(%w+)\"')\n"
    "  if (l and l ~= ARGV[4]) or v > (tonumber(ARGV[5]) or 0) then return {-1, ''} end\n"
    "  e = l or (ARGV[4] ~= '' and ARGV[4]) or ARGV[3]\n"
    "  v = math.max(v, tonumber(ARGV[5]) or 0)\n"
    "end\n"
    "v = v + 1\n"
    "redis.call('SET', KEYS[1], '{\"version\":' .. v .. ',\"lineage\":\"' .. e .. '\",' .. "
    "ARGV[1])\n"
    "redis.call('PUBLISH', KEYS[1], v)\n"
    "return {v, e}\n";

static struct {
    atomic_bool running;
    rk_store_t *cluster; /* the Redis Cluster store (borrowed), or NULL: url */
    rk_redis_url_t url;
    char key[96]; /* <prefix>:ruleset, also the channel */
    char origin[33];
    pthread_t worker, subscriber;
    pthread_mutex_t lock; /* guards the flags below */
    pthread_cond_t cond;
    bool stopping, dirty, check_now;
    bool read_first; /* a publish found a document it had not read */
    /* The sockets the threads may be blocked on (-1: none), shut down by
     * rk_rules_sync_stop() so that a hung Redis cannot hold a shutdown for
     * a command timeout. Under lock. */
    int worker_fd, subscriber_fd;
    /* The version of the document in Redis last published or applied here,
     * within its lineage (the worker's alone): a new lineage starts again
     * from version 1. */
    _Atomic int64_t applied;
    char lineage[33];
    /* Changes of lists or tokens made here; a publish that saw them all
     * clears META_UNPUBLISHED. */
    atomic_uint local_marks;
    /* The local ruleset version last published or applied: a newer one
     * means a local change not yet published, which an import must not undo. */
    _Atomic int64_t synced;
    /* The rows of the document last published or applied here (the
     * worker's alone): what a merge tells changes by. NULL: none yet. */
    cJSON *base;
    unsigned base_marks; /* local_marks when base was taken: lists or tokens changed since */
    bool base_saved;     /* base is the one kept in the rules database */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .worker_fd = -1, .subscriber_fd = -1};

/* Set on the worker while it imports: its commit must not be published again. */
static _Thread_local bool importing;
/* The ruleset version of the worker's last import commit (overrides bump it too). */
static _Thread_local int64_t imported_version;

/* ---- helpers ------------------------------------------------------------------------- */

/* Waits on the condition until the monotonic time until_ms (lock held). */
static void wait_until(int64_t until_ms) {
    int64_t delta = until_ms - rk_mono_ms();
    if (delta <= 0)
        return;
    struct timespec ts;
    rk_timespec_in(&ts, CLOCK_MONOTONIC, delta);
    pthread_cond_timedwait(&g.cond, &g.lock, &ts);
}

static void wake_worker(bool publish, bool check) {
    pthread_mutex_lock(&g.lock);
    g.dirty |= publish;
    g.check_now |= check;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

/*
 * Records c as the connection a thread uses (slot: g.worker_fd or
 * g.subscriber_fd; c NULL before the thread frees it). One made while the
 * sync stops is shut down at once.
 */
static void track(int *slot, const redisContext *c) {
    pthread_mutex_lock(&g.lock);
    *slot = c ? c->fd : -1;
    if (*slot >= 0 && g.stopping)
        shutdown(*slot, SHUT_RDWR);
    pthread_mutex_unlock(&g.lock);
}

/* Frees a thread's connection after forgetting it. */
static void drop(int *slot, redisContext **c) {
    track(slot, NULL);
    redisFree(*c);
    *c = NULL;
}

static void raise_applied(int64_t version) {
    int64_t cur = atomic_load(&g.applied);
    while (version > cur && !atomic_compare_exchange_weak(&g.applied, &cur, version))
        ;
}

/*
 * Connects, authenticates and selects the database; NULL when Redis cannot
 * be reached (why in err). The caller owns the context.
 */
static redisContext *connect_redis(char *err, size_t errlen) {
    struct timeval ctv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    struct timeval tv = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(g.url.host, g.url.port, ctv);
    if (!c || c->err) {
        snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (g.url.password[0]) {
        r = g.url.user[0] ? redisCommand(c, "AUTH %s %s", g.url.user, g.url.password)
                          : redisCommand(c, "AUTH %s", g.url.password);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    if (g.url.db) {
        r = redisCommand(c, "SELECT %d", g.url.db);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    return c;
fail:
    snprintf(err, errlen, "%s", r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

/*
 * Runs one command on the ruleset key for the worker: on a cluster through
 * the store (sent to the key's master, MOVED and ASK followed), otherwise on
 * the worker's own connection *c, connected when needed and dropped after an
 * I/O error. The reply (possibly an error reply) is the caller's; NULL with
 * err set when Redis did not answer.
 */
static redisReply *worker_command(redisContext **c, int argc, const char **argv, const size_t *lens,
                                  char *err, size_t errlen) {
    if (g.cluster) {
        rk_redis_cluster_cmd_t cmd = {g.key, strlen(g.key), argc, argv, lens};
        redisReply *r = NULL;
        if (rk_redis_cluster_run(g.cluster, &cmd, 1, &r) != RK_OK || !r) {
            snprintf(err, errlen, "the master serving %s did not answer", g.key);
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    if (!*c) {
        if (!(*c = connect_redis(err, errlen)))
            return NULL;
        track(&g.worker_fd, *c);
    }
    redisReply *r = redisCommandArgv(*c, argc, argv, lens);
    if (!r) {
        snprintf(err, errlen, "%s", (*c)->errstr);
        drop(&g.worker_fd, c);
    }
    return r;
}

/* ---- publishing and importing (the worker) --------------------------------------------- */

/* The members of a ruleset document that hold rows, by rk_merge_kind_t. */
static const char *const row_kinds[] = {"rules", "overrides", "tokens", "lists"};

/* Remembers the rows of doc as the base of the next merge, taken when
 * local_marks was marks. */
static void set_base(const cJSON *doc, unsigned marks) {
    g.base_marks = marks;
    cJSON *base = cJSON_CreateObject();
    for (size_t k = 0; base && k < RK_ARRAY_LEN(row_kinds); k++) {
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(doc, row_kinds[k]);
        cJSON *copy = cJSON_IsArray(rows) ? cJSON_Duplicate(rows, true) : NULL;
        if (copy)
            cJSON_AddItemToObject(base, row_kinds[k], copy);
    }
    cJSON_Delete(g.base);
    g.base = base; /* NULL when out of memory: no merge until the next one */
    g.base_saved = false;
}

/*
 * Keeps the base in the rules database before a change of this process goes
 * out, once per base: an instance restarted before that change is published
 * (Redis away) then merges it with what other instances changed meanwhile,
 * instead of publishing its own ruleset over theirs.
 */
static void save_base(void) {
    if (!g.base || g.base_saved)
        return;
    rk_rules_db_t *db = rk_rules_db_instance();
    char *text = db ? cJSON_PrintUnformatted(g.base) : NULL;
    g.base_saved = text && rk_rules_db_sync_base_set(db, text) == RK_OK;
    cJSON_free(text);
    if (!g.base_saved)
        rk_warn("rules sync: cannot keep the ruleset last synced; if this instance restarts "
                "before its change is published, the change goes out over other instances'");
}

/* The base kept by the last run, for a change it did not publish (lists or
 * tokens among it when unpublished). */
static void restore_base(rk_rules_db_t *db, bool unpublished) {
    char *text = rk_rules_db_sync_base_get(db);
    g.base = text ? cJSON_Parse(text) : NULL;
    free(text);
    g.base_saved = g.base != NULL;
    g.base_marks = atomic_load(&g.local_marks) - (unpublished ? 1u : 0u);
}

/* This process's rows, as a document (kinds it cannot read left out); the
 * local ruleset version they are of in *version. NULL when the rules are busy. */
static cJSON *export_local(int64_t *version) {
    rk_rules_db_t *db = rk_rules_db_instance();
    cJSON *rules = NULL;
    if (!db || rk_rules_db_list(db, &rules, version) != RK_DB_OK)
        return NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "rules", rules);
    cJSON *rows[] = {rk_overrides_export(db), rk_tokens_export(), rk_lists_export()};
    for (size_t k = 1; k < RK_ARRAY_LEN(row_kinds); k++)
        if (rows[k - 1])
            cJSON_AddItemToObject(doc, row_kinds[k], rows[k - 1]);
    return doc;
}

/*
 * The document to import in place of remote when this process changed
 * things since its base: remote's rows, this process's where it changed
 * them (merge.h), kind by kind; a kind the base or this process lacks is
 * remote's. NULL when out of memory.
 */
static cJSON *merged_with_local(const cJSON *remote, const cJSON *local) {
    cJSON *out = cJSON_CreateObject();
    for (size_t k = 0; out && k < RK_ARRAY_LEN(row_kinds); k++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(remote, row_kinds[k]);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(g.base, row_kinds[k]);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(local, row_kinds[k]);
        if (!cJSON_IsArray(r))
            continue; /* absent: left alone */
        cJSON *rows = cJSON_IsArray(b) && cJSON_IsArray(l)
                          ? rk_merge_rows((rk_merge_kind_t)k, b, r, l)
                          : cJSON_Duplicate(r, true);
        if (!rows) {
            cJSON_Delete(out);
            return NULL;
        }
        cJSON_AddItemToObject(out, row_kinds[k], rows);
    }
    return out;
}

/* Whether every kind of rows doc carries is as remote has it. */
static bool same_rows(const cJSON *doc, const cJSON *remote) {
    for (size_t k = 0; k < RK_ARRAY_LEN(row_kinds); k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, row_kinds[k]);
        if (a && !cJSON_Compare(a, cJSON_GetObjectItemCaseSensitive(remote, row_kinds[k]), true))
            return false;
    }
    return true;
}

/* The local ruleset version now in step with Redis, kept for a restart. */
static void remember_synced(rk_rules_db_t *db, int64_t local_version) {
    atomic_store(&g.synced, local_version);
    if (rk_rules_db_meta_set(db, META_SYNCED, local_version) != RK_OK)
        rk_warn("rules sync: cannot record the version published");
}

typedef enum {
    PUBLISHED,
    PUBLISH_ABSENT_ONLY, /* only_if_absent, and another instance's document came first */
    PUBLISH_READ_FIRST,  /* a document this process has not read is there */
    PUBLISH_REFUSED      /* (RK_ERR) Redis answered with an error: OOM at maxmemory, READONLY */
} publish_result_t;

/*
 * Writes this process's ruleset to Redis as the next version; with
 * only_if_absent, only where Redis holds no document (*result says what
 * happened when RK_OK, or PUBLISH_REFUSED). Logs nothing on failure: the
 * worker does, once per outage (note_round).
 */
static rk_status_t publish(redisContext **c, bool only_if_absent, publish_result_t *result,
                           char *err, size_t errlen) {
    *result = PUBLISH_ABSENT_ONLY;
    rk_rules_db_t *db = rk_rules_db_instance();
    cJSON *rules = NULL;
    int64_t local_version;
    unsigned marks = atomic_load(&g.local_marks);
    if (!db || rk_rules_db_list(db, &rules, &local_version) != RK_DB_OK) {
        snprintf(err, errlen, "the rules database is busy"); /* tried again after a backoff */
        return RK_ERR;
    }
    char now[32];
    rk_format_time(rk_now_ms(), now);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "origin", g.origin);
    cJSON_AddNumberToObject(doc, "ruleset_version", (double)local_version);
    cJSON_AddStringToObject(doc, "exported_at", now);
    cJSON_AddItemToObject(doc, "rules", rules);
    /* each absent when unreadable, which leaves the other instances' alone */
    cJSON *overrides = rk_overrides_export(db);
    if (overrides)
        cJSON_AddItemToObject(doc, "overrides", overrides);
    cJSON *tokens = rk_tokens_export(); /* hashes only */
    if (tokens)
        cJSON_AddItemToObject(doc, "tokens", tokens);
    cJSON *lists = rk_lists_export();
    if (lists)
        cJSON_AddItemToObject(doc, "lists", lists);
    char *text = cJSON_PrintUnformatted(doc);
    unsigned char raw[16];
    char fresh[33], seen[24];
    if (!text || rk_random_bytes(raw, sizeof raw) != RK_OK) {
        snprintf(err, errlen, "%s", text ? "no randomness for a lineage" : "out of memory");
        cJSON_free(text);
        cJSON_Delete(doc);
        return RK_ERR;
    }
    rk_hex(raw, sizeof raw, fresh);
    snprintf(seen, sizeof seen, "%lld", (long long)atomic_load(&g.applied));
    const char *argv[] = {"EVAL", publish_script, "1", g.key, text + 1, only_if_absent ? "1" : "0",
                          fresh,  g.lineage,      seen};
    size_t lens[] = {4,
                     sizeof publish_script - 1,
                     1,
                     strlen(g.key),
                     strlen(text + 1),
                     1,
                     strlen(fresh),
                     strlen(g.lineage),
                     strlen(seen)};
    redisReply *r = worker_command(c, 9, argv, lens, err, errlen);
    cJSON_free(text);
    bool answered = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                    r->element[0]->type == REDIS_REPLY_INTEGER &&
                    r->element[1]->type == REDIS_REPLY_STRING &&
                    r->element[1]->len < sizeof g.lineage;
    if (!answered) {
        if (r)
            snprintf(err, errlen, "%s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to EVAL");
        if (r && r->type == REDIS_REPLY_ERROR)
            *result = PUBLISH_REFUSED;
        freeReplyObject(r);
        cJSON_Delete(doc);
        return RK_ERR;
    }
    long long version = r->element[0]->integer;
    if (version < 0)
        *result = PUBLISH_READ_FIRST;
    if (version > 0) {
        *result = PUBLISHED;
        if (strcmp(g.lineage, r->element[1]->str) != 0 && g.lineage[0])
            rk_info("rules sync: Redis had lost the ruleset (restarted or flushed); published "
                    "it again");
        snprintf(g.lineage, sizeof g.lineage, "%s", r->element[1]->str);
        atomic_store(&g.applied, version);
        set_base(doc, marks); /* in Redis now */
        remember_synced(db, local_version);
        if (atomic_load(&g.local_marks) == marks &&
            rk_rules_db_meta_set(db, META_UNPUBLISHED, 0) != RK_OK)
            rk_warn("rules sync: cannot record that the lists and tokens are published");
        rk_debug("rules sync: published ruleset %lld as version %lld", (long long)local_version,
                 version);
    }
    cJSON_Delete(doc);
    freeReplyObject(r);
    return RK_OK;
}

/*
 * The rows of the array field name of doc that valid accepts, as a new array
 * of references (NULL when the field is absent: left alone); rows it refuses
 * are left out with a warning.
 */
static cJSON *valid_rows(const cJSON *doc, const char *name, bool (*valid)(const cJSON *row)) {
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(doc, name);
    if (!cJSON_IsArray(rows))
        return NULL;
    cJSON *kept = cJSON_CreateArray();
    const cJSON *row;
    int skipped = 0;
    cJSON_ArrayForEach(row, rows) {
        if (valid(row))
            cJSON_AddItemReferenceToArray(kept, (cJSON *)row);
        else
            skipped++;
    }
    if (skipped)
        rk_warn("rules sync: %d of the %s in Redis are not valid here; left out", skipped, name);
    return kept;
}

/*
 * Imports a document newer than the one applied (all or nothing, actor
 * "sync"). RK_ERR only when it should be tried again (the database busy);
 * a document that does not validate is skipped with a warning.
 *
 * With merge, what this process changed since its base (the document last
 * published or applied here) is kept and the rest taken from the document
 * (merged_with_local); *publish_wanted is set when that differs from the
 * document, so that the merge goes out. A change made here while merging
 * leaves the document unapplied: the publish that change asks for finds it
 * again. Without merge, a local change the import finds sets *conflicted,
 * for the caller to merge. Without a base (none published or applied since
 * the start, nor kept by the last run: restore_base), a local change not yet published wins over
 * the document, which is then not imported (*publish_wanted set).
 */
static rk_status_t apply_as(const cJSON *doc, int64_t version, bool merge, bool *publish_wanted,
                            bool *conflicted) {
    int64_t expected = atomic_load(&g.synced);
    unsigned marks = atomic_load(&g.local_marks);
    cJSON *local = merge ? export_local(&expected) : NULL;
    if (merge && !local)
        return RK_ERR; /* the rules busy: tried again */
    cJSON *merged = local ? merged_with_local(doc, local) : NULL;
    bool out_of_memory = local && !merged;
    cJSON_Delete(local);
    if (out_of_memory)
        return RK_ERR;
    const cJSON *src = merged ? merged : doc;
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(src, "rules");
    if (!cJSON_IsArray(rules)) {
        rk_warn("rules sync: ruleset version %lld in Redis has no rules array; ignored",
                (long long)version);
        raise_applied(version);
        cJSON_Delete(merged);
        return RK_OK;
    }
    cJSON *canon = cJSON_CreateArray();
    cJSON *errors = cJSON_CreateArray();
    cJSON *overrides = valid_rows(src, "overrides", rk_overrides_row_valid);
    cJSON *lists = valid_rows(src, "lists", rk_lists_row_valid);
    const cJSON *r;
    cJSON_ArrayForEach(r, rules) {
        /* another instance, of an older version, may publish a burst ignored here */
        cJSON *copy = cJSON_Duplicate(r, true);
        rk_rule_drop_ignored_burst(copy);
        cJSON *one = copy ? rk_rule_canonical(copy, errors) : NULL;
        cJSON_Delete(copy);
        if (!one)
            break;
        cJSON_AddItemToArray(canon, one);
    }
    rk_status_t rc = RK_OK;
    if (cJSON_GetArraySize(errors) > 0) {
        char *why = cJSON_PrintUnformatted(errors);
        rk_warn("rules sync: ruleset version %lld in Redis is not valid here (%.300s); ignored",
                (long long)version, why ? why : "");
        cJSON_free(why);
        raise_applied(version);
        goto done;
    }
    rk_rules_db_t *db = rk_rules_db_instance();
    rk_import_result_t res;
    bool overrides_changed = false;
    importing = true;
    imported_version = 0;
    rk_db_status_t st =
        db ? rk_rules_db_import_at(db, canon, RK_ACTOR_SYNC, expected, &res) : RK_DB_ERROR;
    if (st == RK_DB_OK && overrides)
        st = rk_overrides_replace(db, overrides, &overrides_changed);
    importing = false;
    if (st == RK_DB_CONFLICT && merged)
        goto done; /* changed here meanwhile: that change's publish reads it again */
    if (st == RK_DB_CONFLICT && g.base) {
        *conflicted = true; /* changed here since the base: to be merged */
        goto done;
    }
    if (st == RK_DB_CONFLICT) { /* read, and to be replaced by the change made here */
        raise_applied(version);
        *publish_wanted = true;
        goto done;
    }
    if (st != RK_DB_OK) {
        rc = RK_ERR;
        goto done;
    }
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(src, "tokens");
    if ((cJSON_IsArray(tokens) && rk_tokens_replace(tokens) != RK_TOKENS_OK) ||
        (lists && rk_lists_replace(lists) != RK_OK)) {
        rc = RK_ERR;
        goto done;
    }
    raise_applied(version);
    /* The document is the base from now on. What this process changed and
     * kept is still not published: until it is, it stays a change (the
     * version synced and the marks of the base are left as they were), so
     * that the next document is merged too, not imported over it. */
    bool kept_changes = merged && !same_rows(merged, doc);
    set_base(doc, kept_changes ? g.base_marks : marks);
    if (kept_changes) {
        *publish_wanted = true; /* what this process changed goes out, with the rest */
        rk_info("rules sync: merged ruleset version %lld from Redis with the changes made here",
                (long long)version);
    } else {
        remember_synced(db, res.version > imported_version ? res.version : imported_version);
    }
    if (res.created || res.updated || res.deleted || overrides_changed)
        rk_info("rules sync: applied ruleset version %lld from Redis (%d created, %d updated, "
                "%d deleted%s)",
                (long long)version, res.created, res.updated, res.deleted,
                overrides_changed ? ", overrides changed" : "");
done:
    cJSON_Delete(merged);
    cJSON_Delete(lists);
    cJSON_Delete(overrides);
    cJSON_Delete(errors);
    cJSON_Delete(canon);
    return rc;
}

/*
 * Imports a document newer than the one applied (apply_as), merged with
 * what this process changed since its base. A merge costs an export of the
 * whole ruleset, so it is made only when a change is known (lists or
 * tokens changed here, or the rules moved past the version last synced) or
 * the import finds one.
 */
static rk_status_t apply_document(const cJSON *doc, int64_t version, bool *publish_wanted) {
    bool merge = g.base && (atomic_load(&g.local_marks) != g.base_marks ||
                            rk_ruleset_version(rk_rules_current()) != atomic_load(&g.synced));
    bool conflicted = false;
    rk_status_t rc = apply_as(doc, version, merge, publish_wanted, &conflicted);
    if (rc == RK_OK && conflicted)
        rc = apply_as(doc, version, true, publish_wanted, &conflicted);
    return rc;
}

/*
 * Reads the document in Redis and imports it when it is newer. When Redis
 * holds none (a new or restarted Redis), asks for this process's ruleset to
 * be published where none is yet (*only_if_absent), if it has rules or list
 * entries, so that instances joining later find it: an instance that
 * publishes a change meanwhile is not overwritten with a ruleset without it.
 * With peek (a change made here is about to go out over it), the document's
 * version and lineage are learnt, not applied.
 */
static rk_status_t fetch(redisContext **c, bool peek, bool *publish_wanted, bool *only_if_absent,
                         char *err, size_t errlen) {
    const char *argv[] = {"GET", g.key};
    size_t lens[] = {3, strlen(g.key)};
    redisReply *r = worker_command(c, 2, argv, lens, err, errlen);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        if (r)
            snprintf(err, errlen, "%s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to GET");
        freeReplyObject(r);
        return RK_ERR;
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        atomic_store(&g.applied, 0); /* Redis lost the ruleset: versions start again */
        g.lineage[0] = '\0';
        if (!peek) { /* otherwise a change made here goes out as it is */
            *publish_wanted = rk_ruleset_count(rk_rules_current()) > 0 || !rk_lists_empty();
            *only_if_absent = true;
        }
        return RK_OK;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(r->str, r->len, &end, 0);
    freeReplyObject(r);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "version");
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(doc, "origin");
    rk_status_t rc = RK_OK;
    /* Another lineage: Redis lost the document and an instance published
     * one anew; its versions start again (a document without one, written
     * by hand, belongs to the lineage in force). */
    const cJSON *lineage = cJSON_GetObjectItemCaseSensitive(doc, "lineage");
    if (cJSON_IsString(lineage) && strlen(lineage->valuestring) < sizeof g.lineage &&
        strcmp(lineage->valuestring, g.lineage) != 0) {
        if (g.lineage[0])
            rk_info("rules sync: Redis lost the ruleset (restarted or flushed); reading the one "
                    "published since");
        snprintf(g.lineage, sizeof g.lineage, "%s", lineage->valuestring);
        atomic_store(&g.applied, 0);
    }
    if (!rk_json_whole(v, 0)) {
        rk_warn("rules sync: %s in Redis is not a ruleset document; ignored", g.key);
    } else if ((int64_t)v->valuedouble > atomic_load(&g.applied)) {
        int64_t version = (int64_t)v->valuedouble;
        if (cJSON_IsString(origin) && !strcmp(origin->valuestring, g.origin))
            raise_applied(version); /* our own */
        else if (peek && !g.base)
            raise_applied(version); /* about to be replaced by ours, nothing to merge with */
        else
            rc = apply_document(doc, version, publish_wanted);
    }
    cJSON_Delete(doc);
    return rc;
}

/* What the worker has said of Redis, so that each trouble, and its end, is said once. */
typedef struct {
    bool unavailable; /* Redis did not answer: "answers again" follows */
    bool refused;     /* Redis refused the ruleset's write: "accepts writes again" follows */
} sync_warned_t;

/*
 * Logs what a round of the worker changed, each trouble and its end once:
 * Redis unavailable (rc RK_ERR, not refused), answering again, refusing the
 * ruleset's write (refused, with its reason in err: OOM when maxmemory is
 * reached), taking it again (published). A refusal ends only with a publish
 * that goes through: Redis answers the reads between the retries, which
 * would otherwise say "again" every time.
 */
static void note_round(sync_warned_t *w, rk_status_t rc, bool refused, bool published,
                       const char *err) {
    if (rc != RK_OK && !refused) {
        if (!w->unavailable)
            rk_warn("rules sync: Redis is unavailable (%s); retrying", err);
        w->unavailable = true;
        return;
    }
    if (w->unavailable)
        rk_info("rules sync: Redis answers again");
    w->unavailable = false;
    if (refused && !w->refused)
        rk_warn("rules sync: Redis refuses writes (%s); retrying until the ruleset is published",
                err);
    if (published && w->refused)
        rk_info("rules sync: Redis accepts writes again; ruleset published");
    w->refused = refused || (w->refused && !published);
}

static void *worker_main(void *arg) {
    (void)arg;
    redisContext *c = NULL;
    int64_t backoff = BACKOFF_MIN_MS, retry_at = 0, next_poll = 0;
    sync_warned_t warned = {false, false};
    pthread_mutex_lock(&g.lock);
    for (;;) {
        while (!g.stopping) {
            int64_t now = rk_mono_ms();
            bool due = now >= next_poll || g.dirty || g.check_now;
            if (due && now >= retry_at)
                break;
            wait_until(now < retry_at ? retry_at : next_poll);
        }
        if (g.stopping)
            break;
        bool want_publish = g.dirty, read_first = g.read_first;
        g.dirty = g.check_now = g.read_first = false;
        pthread_mutex_unlock(&g.lock);

        /* A change made here is published without reading first, unless a
         * publish found a document it had not read: then it is read (its
         * version learnt, not applied) and the ruleset exported again. */
        char err[256] = "command failed";
        rk_status_t rc = RK_OK;
        bool only_if_absent = false;
        publish_result_t result = PUBLISHED;
        if (!want_publish || read_first)
            rc = fetch(&c, want_publish, &want_publish, &only_if_absent, err, sizeof err);
        if (rc == RK_OK && want_publish) {
            save_base();
            rc = publish(&c, only_if_absent, &result, err, sizeof err);
        }

        note_round(&warned, rc, rc != RK_OK && result == PUBLISH_REFUSED,
                   rc == RK_OK && want_publish && result == PUBLISHED, err);
        pthread_mutex_lock(&g.lock);
        int64_t now = rk_mono_ms();
        if (rc == RK_OK) {
            backoff = BACKOFF_MIN_MS;
            retry_at = 0;
            next_poll = now + RK_SYNC_POLL_MS;
            /* Another instance's document came first: read it; and publish
             * this change once what it would replace is read. */
            g.check_now |= result != PUBLISHED;
            g.read_first |= result == PUBLISH_READ_FIRST;
            g.dirty |= result == PUBLISH_READ_FIRST;
        } else {
            g.dirty |= want_publish;
            g.check_now = true;
            retry_at = now + backoff;
            backoff = backoff * 2 > RK_SYNC_BACKOFF_MAX_MS ? RK_SYNC_BACKOFF_MAX_MS : backoff * 2;
        }
    }
    pthread_mutex_unlock(&g.lock);
    drop(&g.worker_fd, &c);
    return NULL;
}

/* ---- listening (the subscriber) ---------------------------------------------------------- */

static bool stopping(void) {
    pthread_mutex_lock(&g.lock);
    bool s = g.stopping;
    pthread_mutex_unlock(&g.lock);
    return s;
}

/* Handles one reply in SUBSCRIBE mode: ["message", channel, version]. */
static void on_message(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    long long version = strtoll(r->element[2]->str, NULL, 10);
    if (version != atomic_load(&g.applied)) /* newer, or Redis lost the document */
        wake_worker(false, true);
}

/* Reads messages until the connection fails or the sync stops. */
static void listen_messages(redisContext *c) {
    while (!stopping()) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK)
            return;
        if (reply) {
            on_message(reply);
            freeReplyObject(reply);
            continue;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, LISTEN_POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (n > 0 && redisBufferRead(c) != REDIS_OK)
            return;
    }
}

/*
 * The subscriber's own connection: to the single Redis, or to the master
 * that owns the key now (found again on every reconnection, so that a
 * failover moves the subscriber to the new master). NULL with err set.
 */
static redisContext *connect_subscriber(char *err, size_t errlen) {
    if (g.cluster)
        return rk_redis_cluster_connect_for_key(g.cluster, g.key, strlen(g.key), err, errlen);
    return connect_redis(err, errlen);
}

static void *subscriber_main(void *arg) {
    (void)arg;
    int64_t backoff = BACKOFF_MIN_MS;
    while (!stopping()) {
        char err[256];
        redisContext *c = connect_subscriber(err, sizeof err);
        if (c) {
            track(&g.subscriber_fd, c);
            redisReply *r = redisCommand(c, "SUBSCRIBE %s", g.key);
            bool ok = r && r->type == REDIS_REPLY_ARRAY;
            freeReplyObject(r);
            if (ok) {
                backoff = BACKOFF_MIN_MS;
                wake_worker(false, true); /* catch up on what was published meanwhile */
                listen_messages(c);
            }
            drop(&g.subscriber_fd, &c);
        }
        pthread_mutex_lock(&g.lock);
        if (!g.stopping)
            wait_until(rk_mono_ms() + backoff);
        pthread_mutex_unlock(&g.lock);
        backoff = backoff * 2 > RK_SYNC_BACKOFF_MAX_MS ? RK_SYNC_BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

/* The tokens or the lists changed here: they travel in the same document,
 * and until it is published a restart must publish it, not replace it. */
static void tokens_or_lists_changed(void) {
    atomic_fetch_add(&g.local_marks, 1);
    rk_rules_db_t *db = rk_rules_db_instance();
    if (db && rk_rules_db_meta_set(db, META_UNPUBLISHED, 1) != RK_OK)
        rk_warn("rules sync: cannot record an unpublished change of the lists or tokens");
    wake_worker(true, false);
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* Starts both threads on the transport set in g (cluster or url). */
static rk_status_t start_threads(const char *key_prefix) {
    snprintf(g.key, sizeof g.key, "%s:ruleset", key_prefix && *key_prefix ? key_prefix : "ratekit");
    unsigned char raw[16];
    if (rk_random_bytes(raw, sizeof raw) != RK_OK)
        return RK_ERR;
    rk_hex(raw, sizeof raw, g.origin);
    atomic_store(&g.applied, 0);
    g.lineage[0] = '\0';
    /* What the last run published: a change made since (Redis away, then a
     * restart) goes out first instead of being replaced by Redis's copy. */
    rk_rules_db_t *db = rk_rules_db_instance();
    int64_t now_version = rk_ruleset_version(rk_rules_current());
    int64_t synced = db ? rk_rules_db_meta_get(db, META_SYNCED, now_version) : now_version;
    bool unpublished = db && rk_rules_db_meta_get(db, META_UNPUBLISHED, 0) == 1;
    atomic_store(&g.synced, synced < 0 ? now_version : synced);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cond, &attr);
    pthread_condattr_destroy(&attr);
    g.stopping = false;
    g.dirty = unpublished || (synced >= 0 && synced != now_version);
    if (g.dirty) {
        rk_info("rules sync: changes made here were not published before the last stop; "
                "publishing them");
        restore_base(db, unpublished);
    }
    g.check_now = true;
    if (pthread_create(&g.worker, NULL, worker_main, NULL) != 0) {
        pthread_cond_destroy(&g.cond);
        rk_error("rules sync: cannot start the worker thread");
        return RK_ERR;
    }
    if (pthread_create(&g.subscriber, NULL, subscriber_main, NULL) != 0) {
        wake_worker(false, false);
        pthread_mutex_lock(&g.lock);
        g.stopping = true;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.lock);
        pthread_join(g.worker, NULL);
        pthread_cond_destroy(&g.cond);
        rk_error("rules sync: cannot start the subscriber thread");
        return RK_ERR;
    }
    g.running = true;
    rk_tokens_set_change_hook(tokens_or_lists_changed);
    rk_lists_set_change_hook(tokens_or_lists_changed);
    return RK_OK;
}

rk_status_t rk_rules_sync_start(const char *redis_url, const char *key_prefix) {
    char err[256];
    if (g.running)
        return RK_OK;
    if (rk_redis_url_parse(redis_url, &g.url, err, sizeof err) != RK_OK) {
        rk_error("rules sync: %s", err);
        return RK_ERR;
    }
    g.cluster = NULL;
    return start_threads(key_prefix);
}

rk_status_t rk_rules_sync_start_cluster(rk_store_t *cluster, const char *key_prefix) {
    if (g.running)
        return RK_OK;
    memset(&g.url, 0, sizeof g.url);
    g.cluster = cluster;
    return start_threads(key_prefix);
}

void rk_rules_sync_stop(void) {
    if (!g.running)
        return;
    rk_tokens_set_change_hook(NULL);
    rk_lists_set_change_hook(NULL);
    pthread_mutex_lock(&g.lock);
    g.stopping = true;
    pthread_cond_broadcast(&g.cond);
    if (g.worker_fd >= 0)
        shutdown(g.worker_fd, SHUT_RDWR);
    if (g.subscriber_fd >= 0)
        shutdown(g.subscriber_fd, SHUT_RDWR);
    pthread_mutex_unlock(&g.lock);
    pthread_join(g.subscriber, NULL);
    pthread_join(g.worker, NULL);
    pthread_cond_destroy(&g.cond);
    cJSON_Delete(g.base);
    g.base = NULL;
    g.running = false;
    g.cluster = NULL;
}

void rk_rules_sync_committed(int64_t version) {
    if (importing)
        imported_version = version;
    if (!g.running || importing)
        return;
    wake_worker(true, false);
}
