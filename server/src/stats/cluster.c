/*
 * cluster.c — see cluster.h.
 *
 * Every exchange is a batch of commands built first (the arguments copied
 * into one buffer), then run on either transport: one pipeline on the single
 * connection, or one rk_redis_cluster_run on the cluster, which routes each
 * command by its key (argv[1]) and pipelines per node.
 */
#include "cluster.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "stats.h"

#define TOP_PER_MINUTE 1000
#define RETRY_MS 1000
#define ARGS_MAX 5 /* ZREVRANGE key 0 999 WITHSCORES */

struct rk_cluster {
    pthread_mutex_t lock;
    rk_store_t *store; /* the Redis Cluster store (borrowed), or NULL: ctx and url */
    redisContext *ctx;
    rk_redis_url_t url;
    char prefix[65];
    int64_t connect_timeout_ms, timeout_ms;
    int64_t next_attempt_ms; /* monotonic: no reconnect before */
    bool writing;            /* the batch under way writes (rk_cluster_publish, _leave) */
    bool warned;             /* "paused" was said: the recovery will be, once */
    bool warned_writing;     /* ...on a write: only a write that goes through ends it */
    bool warned_refused;     /* ...Redis answered the write with an error (OOM) */
};

rk_cluster_t *rk_cluster_new(const rk_config_t *cfg, rk_store_t *cluster_store, char *err,
                             size_t errlen) {
    rk_cluster_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->store = cluster_store;
    if (!c->store && rk_redis_url_parse(cfg->redis_url, &c->url, err, errlen) != RK_OK) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->prefix, sizeof c->prefix, "%s", cfg->key_prefix[0] ? cfg->key_prefix : "ratekit");
    c->connect_timeout_ms = cfg->redis_connect_timeout_ms > 0 ? cfg->redis_connect_timeout_ms : 500;
    c->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 250;
    return c;
}

void rk_cluster_free(rk_cluster_t *c) {
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct timeval tv_of(int64_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

/* ---- health --------------------------------------------------------------------- */

/* Logs that the statistics are paused: Redis failed (why), or refused a write (refused). */
static void warn_paused(const rk_cluster_t *c, const char *why, bool refused) {
    const char *what = refused ? " refuses writes" : "";
    if (c->store)
        rk_warn("stats: Redis Cluster%s: %s; cluster-wide statistics paused", what, why);
    else
        rk_warn("stats: Redis %s:%d%s: %s; cluster-wide statistics paused", c->url.host,
                c->url.port, what, why);
}

/*
 * Notes a failed exchange: warns once until the exchange that ends it (see
 * succeeded), and once more if Redis then refuses a write, to give its
 * reason. refused: Redis answered with an error (an OOM when maxmemory is
 * reached). A dead single connection is dropped, and the next call
 * reconnects after RETRY_MS (the cluster store keeps its own connections and
 * backoff). Lock held.
 */
static void failed_as(rk_cluster_t *c, const char *why, bool connection_dead, bool refused) {
    refused = refused && c->writing;
    if (!c->warned || (refused && !c->warned_refused)) {
        warn_paused(c, why, refused);
        c->warned = true;
        c->warned_refused = refused;
    }
    c->warned_writing = c->warned_writing || c->writing;
    if (connection_dead) {
        if (c->ctx)
            redisFree(c->ctx);
        c->ctx = NULL;
        c->next_attempt_ms = rk_mono_ms() + RETRY_MS;
    }
}

static void failed(rk_cluster_t *c, const char *why, bool connection_dead) {
    failed_as(c, why, connection_dead, false);
}

/*
 * Notes a successful exchange (says so once after a failure). A failed write
 * is ended only by a write that goes through: a Redis that refuses writes
 * (OOM) still answers the reads between them, and the log would otherwise
 * say "paused" and "again" every second. Lock held.
 */
static void succeeded(rk_cluster_t *c) {
    if (!c->warned || (c->warned_writing && !c->writing))
        return;
    const char *what = c->warned_refused ? "accepts writes" : "reachable";
    if (c->store)
        rk_info("stats: Redis Cluster %s again", what);
    else
        rk_info("stats: Redis %s:%d %s again", c->url.host, c->url.port, what);
    c->warned = c->warned_writing = c->warned_refused = false;
}

/* Runs a set-up command whose reply must not be an error; false (connection dropped) otherwise. */
static bool command_ok(rk_cluster_t *c, redisReply *r) {
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        failed(c, r ? r->str : c->ctx->errstr, true);
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Single Redis: connects, AUTHs and SELECTs when there is no live connection. Lock held. */
static bool ensure_connected(rk_cluster_t *c) {
    if (c->ctx)
        return true;
    if (rk_mono_ms() < c->next_attempt_ms)
        return false;
    c->ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv_of(c->connect_timeout_ms));
    if (!c->ctx || c->ctx->err) {
        failed(c, c->ctx ? c->ctx->errstr : "out of memory", true);
        return false;
    }
    redisSetTimeout(c->ctx, tv_of(c->timeout_ms));
    if (c->url.password[0]) {
        redisReply *r = c->url.user[0]
                            ? redisCommand(c->ctx, "AUTH %s %s", c->url.user, c->url.password)
                            : redisCommand(c->ctx, "AUTH %s", c->url.password);
        if (!command_ok(c, r))
            return false;
    }
    if (c->url.db && !command_ok(c, redisCommand(c->ctx, "SELECT %d", c->url.db)))
        return false;
    return true;
}

/* ---- batches of commands ------------------------------------------------------------- */

typedef struct {
    int argc;
    size_t off[ARGS_MAX]; /* into the batch's text; argv[1] is the key */
    size_t len[ARGS_MAX];
} cmd_t;

typedef struct {
    char *text; /* every argument, NUL-terminated, back to back */
    size_t text_len, text_cap;
    cmd_t *cmds;
    size_t n, cap;
    bool oom;
    bool writes; /* it changes data (else it only reads) */
} batch_t;

static void batch_free(batch_t *b) {
    free(b->text);
    free(b->cmds);
    memset(b, 0, sizeof *b);
}

/* Grows *buf (of *cap elements of size) to hold need elements; false when out of memory. */
static bool grow(void **buf, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return true;
    size_t next = *cap ? *cap : 64;
    while (next < need)
        next *= 2;
    void *p = realloc(*buf, next * size);
    if (!p)
        return false;
    *buf = p;
    *cap = next;
    return true;
}

/* Adds one command of argc (<= ARGS_MAX) strings, copied; argv[1] is the key. */
static void batch_add(batch_t *b, int argc, const char *const *argv) {
    if (b->oom || !grow((void **)&b->cmds, &b->cap, b->n + 1, sizeof *b->cmds)) {
        b->oom = true;
        return;
    }
    cmd_t *cmd = &b->cmds[b->n];
    cmd->argc = argc;
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (!grow((void **)&b->text, &b->text_cap, b->text_len + len + 1, 1)) {
            b->oom = true;
            return;
        }
        memcpy(b->text + b->text_len, argv[i], len + 1);
        cmd->off[i] = b->text_len;
        cmd->len[i] = len;
        b->text_len += len + 1;
    }
    b->n++;
}

static void replies_free(redisReply **replies, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
}

/* The single connection: one pipeline; on an I/O error the rest get NULL. Lock held. */
static rk_status_t run_single(rk_cluster_t *c, const batch_t *b, const char **argv,
                              redisReply **replies) {
    if (!ensure_connected(c))
        return RK_ERR;
    for (size_t i = 0; i < b->n; i++)
        redisAppendCommandArgv(c->ctx, b->cmds[i].argc, argv + i * ARGS_MAX, b->cmds[i].len);
    for (size_t i = 0; i < b->n; i++) {
        void *reply = NULL;
        if (redisGetReply(c->ctx, &reply) != REDIS_OK) {
            failed(c, c->ctx->errstr, true);
            return RK_ERR;
        }
        replies[i] = reply;
    }
    return RK_OK;
}

/* The cluster: each command on the master owning its key (argv[1]). */
static rk_status_t run_on_cluster(rk_cluster_t *c, const batch_t *b, const char **argv,
                                  redisReply **replies) {
    rk_redis_cluster_cmd_t *cmds = malloc(b->n * sizeof *cmds);
    if (!cmds)
        return RK_ERR;
    for (size_t i = 0; i < b->n; i++)
        cmds[i] = (rk_redis_cluster_cmd_t){.key = argv[i * ARGS_MAX + 1],
                                           .key_len = b->cmds[i].len[1],
                                           .argc = b->cmds[i].argc,
                                           .argv = argv + i * ARGS_MAX,
                                           .argv_len = b->cmds[i].len};
    rk_status_t st = rk_redis_cluster_run(c->store, cmds, b->n, replies);
    free(cmds);
    if (st != RK_OK)
        failed(c, "a master did not answer", false);
    return st;
}

/*
 * Runs the batch on c's transport. On RK_OK, replies (b->n of them, the
 * caller's: replies_free) are all present, none of them an error; on RK_ERR
 * none is left to free. Lock held.
 */
static rk_status_t batch_run(rk_cluster_t *c, const batch_t *b, redisReply **replies) {
    if (b->oom)
        return RK_ERR;
    c->writing = b->writes;
    const char **argv = malloc(b->n * ARGS_MAX * sizeof *argv);
    if (!argv)
        return RK_ERR;
    for (size_t i = 0; i < b->n; i++) {
        replies[i] = NULL;
        for (int a = 0; a < b->cmds[i].argc; a++)
            argv[i * ARGS_MAX + (size_t)a] = b->text + b->cmds[i].off[a];
    }
    rk_status_t st =
        c->store ? run_on_cluster(c, b, argv, replies) : run_single(c, b, argv, replies);
    free(argv);
    for (size_t i = 0; st == RK_OK && i < b->n; i++) {
        if (!replies[i]) {
            failed(c, "no reply", false);
            st = RK_ERR;
        } else if (replies[i]->type == REDIS_REPLY_ERROR) {
            failed_as(c, replies[i]->str, false, true);
            st = RK_ERR;
        }
    }
    if (st != RK_OK) {
        replies_free(replies, b->n);
        return RK_ERR;
    }
    succeeded(c);
    return RK_OK;
}

/* Runs the batch and frees its replies: whether it all went through. */
static rk_status_t batch_run_discard(rk_cluster_t *c, const batch_t *b) {
    redisReply **replies = b->n ? calloc(b->n, sizeof *replies) : NULL;
    if (b->n && !replies)
        return RK_ERR;
    pthread_mutex_lock(&c->lock);
    rk_status_t st = batch_run(c, b, replies);
    pthread_mutex_unlock(&c->lock);
    if (st == RK_OK)
        replies_free(replies, b->n);
    free(replies);
    return st;
}

/* ---- writes ------------------------------------------------------------------------ */

/* Adds the commands setting instance's counts of one second (none when it had none). */
static void add_second(batch_t *b, const char *prefix, const char *instance,
                       const rk_cluster_second_t *s) {
    char key[160], num[32], field[RK_RULE_ID_MAX + 160];
    snprintf(key, sizeof key, "%s:stats:{%lld}", prefix, (long long)s->t);
    bool any = false;
    for (size_t i = 0; i < s->n; i++) {
        const char *rule = s->entries[i].slot == RK_RING_CHECKS
                               ? RK_STATS_CHECKS_NAME
                               : rk_stats_slot_rule(s->entries[i].slot);
        if (!rule)
            continue;
        for (int f = 0; f < RK_STAT_FIELDS; f++) {
            if (!s->entries[i].n[f])
                continue;
            snprintf(field, sizeof field, "%s:%s@%s", rule, rk_stat_field_names[f], instance);
            snprintf(num, sizeof num, "%llu", (unsigned long long)s->entries[i].n[f]);
            batch_add(b, 4, (const char *[]){"HSET", key, field, num});
            any = true;
        }
    }
    if (any) {
        snprintf(num, sizeof num, "%d", RK_CLUSTER_STATS_TTL_S);
        batch_add(b, 3, (const char *[]){"EXPIRE", key, num});
    }
}

rk_status_t rk_cluster_publish(rk_cluster_t *c, const char *instance, int64_t now_ms,
                               const rk_cluster_second_t *seconds, size_t nseconds,
                               int64_t denied_minute, const rk_topk_t *denied) {
    batch_t b = {.writes = true};
    char num[32];
    for (size_t i = 0; i < nseconds; i++)
        add_second(&b, c->prefix, instance, &seconds[i]);
    if (denied && denied->len) {
        char all[160], ttl[16];
        snprintf(all, sizeof all, "%s:denied:{%lld}", c->prefix, (long long)denied_minute);
        snprintf(ttl, sizeof ttl, "%d", RK_CLUSTER_DENIED_TTL_S);
        for (size_t i = 0; i < denied->cap; i++) {
            const rk_topk_entry_t *e = &denied->slots[i];
            if (!e->key)
                continue;
            const char *tab = strchr(e->key, '\t');
            if (!tab)
                continue;
            char per_rule[240];
            snprintf(per_rule, sizeof per_rule, "%s:%.*s", all, (int)(tab - e->key), e->key);
            snprintf(num, sizeof num, "%llu", (unsigned long long)e->count);
            batch_add(&b, 4, (const char *[]){"ZINCRBY", all, num, e->key});
            batch_add(&b, 4, (const char *[]){"ZINCRBY", per_rule, num, tab + 1});
            batch_add(&b, 3, (const char *[]){"EXPIRE", per_rule, ttl});
        }
        batch_add(&b, 3, (const char *[]){"EXPIRE", all, ttl});
    }
    char instances[120], now[32], oldest[32];
    snprintf(instances, sizeof instances, "%s:instances", c->prefix);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(oldest, sizeof oldest, "%lld", (long long)(now_ms - 60000));
    batch_add(&b, 4, (const char *[]){"ZADD", instances, now, instance});
    batch_add(&b, 4, (const char *[]){"ZREMRANGEBYSCORE", instances, "-inf", oldest});
    batch_add(&b, 3, (const char *[]){"EXPIRE", instances, "60"}); /* gone with the last one */
    rk_status_t st = batch_run_discard(c, &b);
    batch_free(&b);
    return st;
}

rk_status_t rk_cluster_leave(rk_cluster_t *c, const char *instance) {
    batch_t b = {.writes = true};
    char instances[120];
    snprintf(instances, sizeof instances, "%s:instances", c->prefix);
    batch_add(&b, 3, (const char *[]){"ZREM", instances, instance});
    rk_status_t st = batch_run_discard(c, &b);
    batch_free(&b);
    return st;
}

/* ---- reads ------------------------------------------------------------------------- */

/*
 * Turns an HGETALL reply ("rule:field@instance", n, ...) into entries, the
 * instances' counts of a rule added together ("_checks": the checks' entry,
 * RK_RING_CHECKS); answers how many.
 */
static size_t parse_second(const redisReply *r, rk_ring_entry_t *out, size_t cap) {
    size_t n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *name = r->element[i], *value = r->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        const char *at = memrchr(name->str, '@', name->len);
        size_t name_len = at ? (size_t)(at - name->str) : name->len;
        const char *colon = memrchr(name->str, ':', name_len);
        if (!colon)
            continue;
        const char *field = colon + 1;
        size_t flen = name_len - (size_t)(field - name->str);
        int f = -1;
        for (int k = 0; k < RK_STAT_FIELDS; k++)
            if (strlen(rk_stat_field_names[k]) == flen &&
                !memcmp(field, rk_stat_field_names[k], flen))
                f = k;
        long long v = strtoll(value->str, NULL, 10);
        if (f < 0 || v <= 0)
            continue;
        size_t slot = rk_stats_slot(name->str, (size_t)(colon - name->str));
        size_t j = 0;
        while (j < n && out[j].slot != slot)
            j++;
        if (j == n) {
            if (n == cap)
                continue;
            memset(&out[n], 0, sizeof out[n]);
            out[n++].slot = (uint32_t)slot;
        }
        out[j].n[f] += (uint64_t)v;
    }
    return n;
}

/*
 * Runs a batch of reads under the lock; *replies (b->n of them) is the
 * caller's (replies_free, then free) on RK_OK.
 */
static rk_status_t batch_read(rk_cluster_t *c, const batch_t *b, redisReply ***replies) {
    *replies = b->n ? calloc(b->n, sizeof **replies) : NULL;
    if (!b->n || !*replies)
        return RK_ERR;
    pthread_mutex_lock(&c->lock);
    rk_status_t st = batch_run(c, b, *replies);
    pthread_mutex_unlock(&c->lock);
    if (st != RK_OK) {
        free(*replies);
        *replies = NULL;
    }
    return st;
}

rk_status_t rk_cluster_fetch(rk_cluster_t *c, int64_t from, int64_t to,
                             void (*put)(int64_t t, const rk_ring_entry_t *entries, size_t n)) {
    if (to < from)
        return RK_OK;
    batch_t b = {0};
    for (int64_t t = from; t <= to; t++) {
        char key[160];
        snprintf(key, sizeof key, "%s:stats:{%lld}", c->prefix, (long long)t);
        batch_add(&b, 2, (const char *[]){"HGETALL", key});
    }
    redisReply **replies = NULL;
    rk_status_t st = batch_read(c, &b, &replies);
    /* every rule's slot, and the checks' */
    rk_ring_entry_t *entries = st == RK_OK ? malloc((RK_STATS_SLOTS + 1) * sizeof *entries) : NULL;
    if (entries) {
        for (size_t i = 0; i < b.n; i++)
            put(from + (int64_t)i, entries, parse_second(replies[i], entries, RK_STATS_SLOTS + 1));
    } else {
        st = RK_ERR;
    }
    if (replies)
        replies_free(replies, b.n);
    free(replies);
    free(entries);
    batch_free(&b);
    return st;
}

int64_t rk_cluster_instances(rk_cluster_t *c, int64_t now_ms) {
    batch_t b = {0};
    char key[120], since[32];
    snprintf(key, sizeof key, "%s:instances", c->prefix);
    snprintf(since, sizeof since, "%lld", (long long)(now_ms - RK_CLUSTER_LIVE_MS));
    batch_add(&b, 4, (const char *[]){"ZCOUNT", key, since, "+inf"});
    redisReply **replies = NULL;
    int64_t n = -1;
    if (batch_read(c, &b, &replies) == RK_OK) {
        if (replies[0]->type == REDIS_REPLY_INTEGER)
            n = replies[0]->integer;
        replies_free(replies, b.n);
        free(replies);
    }
    batch_free(&b);
    return n;
}

rk_status_t rk_cluster_top(rk_cluster_t *c, const char *rule, int64_t from_min, int64_t to_min,
                           rk_topk_t *acc) {
    if (to_min < from_min)
        return RK_OK;
    batch_t b = {0};
    char last[16];
    snprintf(last, sizeof last, "%d", TOP_PER_MINUTE - 1);
    for (int64_t m = from_min; m <= to_min; m++) {
        char key[240];
        if (rule)
            snprintf(key, sizeof key, "%s:denied:{%lld}:%s", c->prefix, (long long)m, rule);
        else
            snprintf(key, sizeof key, "%s:denied:{%lld}", c->prefix, (long long)m);
        batch_add(&b, 5, (const char *[]){"ZREVRANGE", key, "0", last, "WITHSCORES"});
    }
    redisReply **replies = NULL;
    rk_status_t st = batch_read(c, &b, &replies);
    for (size_t k = 0; st == RK_OK && k < b.n; k++) {
        const redisReply *r = replies[k];
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
            const redisReply *member = r->element[i], *score = r->element[i + 1];
            if (member->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
                continue;
            long long n = strtoll(score->str, NULL, 10);
            if (n <= 0)
                continue;
            if (rule) {
                char joined[RK_RULE_ID_MAX + RK_STORE_KEY_MAX + 3];
                int len = snprintf(joined, sizeof joined, "%s\t%.*s", rule, (int)member->len,
                                   member->str);
                if (len > 0 && (size_t)len < sizeof joined)
                    rk_topk_add(acc, joined, (size_t)len, (uint64_t)n);
            } else {
                rk_topk_add(acc, member->str, member->len, (uint64_t)n);
            }
        }
    }
    if (replies)
        replies_free(replies, b.n);
    free(replies);
    batch_free(&b);
    return st;
}
