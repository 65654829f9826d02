/*
 * redis.c — the Redis store: the state of every (rule, key) in one Redis
 * server, so that any number of ratekitd instances enforce one limit.
 *
 * Each decision is one Lua script run atomically by Redis (lua/<algorithm>.lua,
 * embedded at build time), called by EVALSHA; a batch of n requests is one
 * pipelined round trip. Key of a decision:
 *
 *     <prefix>:{<rule_id>:<key>}:<algorithm>
 *
 * the braces being the Redis Cluster hash tag.
 *
 * Connections. A hiredis context is not thread-safe, so every calling thread
 * gets its own, created on its first call and kept in a pthread key (freed at
 * thread exit) and in the store's registry (freed by destroy). The registry
 * lock is taken when a thread first uses the store, at thread exit and on
 * destroy, never per decision.
 *
 * Failures. Any failure (refused, timeout, I/O error, error reply, reply of
 * the wrong shape) answers RK_ERR, and the check path applies its fail mode.
 * Every command is bounded by the command timeout (SO_RCVTIMEO/SO_SNDTIMEO,
 * set again on each new context); a context that saw an I/O error is freed.
 * A circuit breaker shared by all threads stops calling Redis after a few
 * consecutive failures and lets one probe through per cool-down: that is
 * also the reconnection backoff. A context found dead at its first use after
 * a while (Redis restarted: EOF or reset on the first reply) is replaced and
 * the command sent once more, so a restart costs no failed check.
 *
 * Requests in flight together. decide_async() (the check path of
 * suspended connections) queues its requests for one I/O thread, which
 * takes everything queued at once and sends it in one pipeline on its own
 * connection: while a round trip is out, the next requests gather, so
 * concurrent checks share round trips instead of each pool thread waiting
 * for its own. decide() (batches, releases, the admin plane) still runs on
 * the calling thread's connection.
 *
 * The key layout, the scripts, the EVALSHA arguments, the reply parsing and
 * the breaker gate are shared with the cluster store (redis_common.c).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "redis_common.h"
#include "thread_records.h"

typedef struct rk_redis_store rk_redis_store_t;

/* One thread's connection. ctx is NULL while disconnected. */
typedef struct rk_redis_conn {
    rk_thread_record_t record; /* first: the store's registry of threads */
    redisContext *ctx;
} rk_redis_conn_t;

struct rk_redis_store {
    rk_store_t base;
    rk_redis_url_t url;
    rk_redis_common_t common; /* key prefix, timeouts, scripts and their SHAs */
    char who[300];            /* "redis at host:port", for logs */

    rk_thread_records_t conns; /* each thread's rk_redis_conn_t */

    rk_redis_gate_t gate; /* circuit breaker shared by every thread */

    /* decide_async(): jobs queued for the I/O thread (see io_main). */
    pthread_mutex_t async_lock; /* guards the fields below */
    pthread_cond_t async_wake;
    struct async_job *queue_head, *queue_tail;
    struct async_job *spare_jobs; /* nodes for reuse: no malloc per request */
    bool io_started, io_waiting, io_stop;
    pthread_t io_thread;
};

/* ================================================================ */
/* Connections                                                       */
/* ================================================================ */

/* Frees a thread's context (NULL is fine). */
static void conn_drop(rk_redis_conn_t *c) {
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

static void conn_record_drop(rk_thread_record_t *r) {
    conn_drop((rk_redis_conn_t *)r);
}

/* This thread's connection record, created (not connected) on first use. */
static rk_redis_conn_t *thread_conn(rk_redis_store_t *s) {
    return (rk_redis_conn_t *)rk_thread_record(&s->conns);
}

/*
 * Connects this thread: TCP with the connect timeout, the command timeout on
 * the socket, then AUTH, SELECT and SCRIPT LOAD of every script in one
 * round trip. On RK_ERR the thread stays disconnected and err says why.
 */
static rk_status_t conn_open(rk_redis_store_t *s, rk_redis_conn_t *c, char *err, size_t errlen) {
    conn_drop(c);
    redisContext *ctx = rk_redis_connect(&s->common, s->url.host, s->url.port, err, errlen);
    if (!ctx)
        return RK_ERR;

    char dbtext[16];
    int dblen = snprintf(dbtext, sizeof dbtext, "%d", s->url.db);
    bool auth = s->url.password[0] != '\0', select = s->url.db != 0;
    int ok = REDIS_OK;
    if (auth && s->url.user[0]) {
        const char *argv[3] = {"AUTH", s->url.user, s->url.password};
        size_t lens[3] = {4, strlen(s->url.user), strlen(s->url.password)};
        ok = redisAppendCommandArgv(ctx, 3, argv, lens);
    } else if (auth) {
        const char *argv[2] = {"AUTH", s->url.password};
        size_t lens[2] = {4, strlen(s->url.password)};
        ok = redisAppendCommandArgv(ctx, 2, argv, lens);
    }
    if (ok == REDIS_OK && select) {
        const char *argv[2] = {"SELECT", dbtext};
        size_t lens[2] = {6, (size_t)dblen};
        ok = redisAppendCommandArgv(ctx, 2, argv, lens);
    }
    if (ok == REDIS_OK)
        ok = rk_redis_append_script_loads(&s->common, ctx);
    if (ok != REDIS_OK) {
        rk_redis_set_err(err, errlen, "redis: out of memory");
        redisFree(ctx);
        return RK_ERR;
    }

    /* Read every reply, even after an error, then judge. */
    char detail[256] = "";
    rk_status_t st = RK_OK;
    for (int i = 0; i < (int)auth + (int)select; i++) {
        redisReply *r = NULL;
        const char *what = (auth && i == 0) ? "AUTH" : "SELECT";
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            rk_redis_describe_failure(ctx, NULL, what, detail, sizeof detail);
            st = RK_ERR;
            break;
        }
        if (st == RK_OK && (r->type != REDIS_REPLY_STATUS)) {
            rk_redis_describe_failure(ctx, r, what, detail, sizeof detail);
            st = RK_ERR;
        }
        freeReplyObject(r);
    }
    if (st == RK_OK || !ctx->err) {
        char loaddetail[256] = "";
        rk_status_t lst =
            rk_redis_read_script_loads(&s->common, ctx, loaddetail, sizeof loaddetail);
        if (st == RK_OK && lst != RK_OK) {
            st = RK_ERR;
            memcpy(detail, loaddetail, sizeof detail);
        }
    }
    if (st != RK_OK) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", s->url.host, s->url.port, detail);
        redisFree(ctx);
        return RK_ERR;
    }
    c->ctx = ctx;
    return RK_OK;
}

/* ================================================================ */
/* Script calls                                                      */
/* ================================================================ */

static bool is_noscript(const redisReply *r) {
    return rk_redis_is_error(r, "NOSCRIPT");
}

/* The outcome of one pipelined pass. */
typedef enum {
    PASS_OK,
    PASS_NOSCRIPT, /* some replies were NOSCRIPT: marked pending in out[] */
    PASS_FAILED,   /* error reply or malformed reply; the context is still usable */
    PASS_IO,       /* the context is dead */
} pass_result_t;

/* out[i].limit < 0 marks request i as still to be (re)sent. */
#define PENDING (-1)

/*
 * Sends every pending request in one pipeline and reads every reply.
 * *io_errno receives errno of an I/O failure (to tell a stale connection
 * from a timeout); *replied whether any reply was read before it.
 */
static pass_result_t run_pass(rk_redis_store_t *s, redisContext *ctx, const rk_store_req_t *reqs,
                              size_t n, rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                              bool *released, int *io_errno, bool *replied) {
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].limit != PENDING)
            continue;
        if (rk_redis_append_eval(&s->common, ctx, &reqs[i], op, lease_id) != REDIS_OK)
            return PASS_IO;
        sent++;
    }
    pass_result_t res = PASS_OK;
    *replied = false;
    for (size_t i = 0; i < n && sent > 0; i++) {
        if (out[i].limit != PENDING)
            continue;
        sent--;
        redisReply *r = NULL;
        errno = 0;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            *io_errno = errno;
            return PASS_IO;
        }
        *replied = true;
        if (is_noscript(r)) {
            if (res == PASS_OK)
                res = PASS_NOSCRIPT;
        } else if (!rk_redis_parse_reply(r, &reqs[i], op, &out[i], released)) {
            res = PASS_FAILED;
        } else if (op == RK_REDIS_OP_RELEASE) {
            out[i].limit = 0; /* done */
        }
        freeReplyObject(r);
    }
    return res;
}

/*
 * Runs n script calls on this thread's connection: one round trip, plus one
 * more after a NOSCRIPT (scripts reloaded, only those calls resent), plus
 * one more when the connection turns out to have been closed by the server
 * before anything was answered. RK_ERR on any other failure.
 */
static rk_status_t run_scripts(rk_redis_store_t *s, rk_redis_conn_t *c, const rk_store_req_t *reqs,
                               size_t n, rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                               bool *released) {
    bool fresh = false;
    if (!c->ctx) {
        if (conn_open(s, c, NULL, 0) != RK_OK)
            return RK_ERR;
        fresh = true;
    }
    for (size_t i = 0; i < n; i++)
        out[i].limit = PENDING;
    bool reloaded = false;
    for (;;) {
        int io_errno = 0;
        bool replied = false;
        pass_result_t res =
            run_pass(s, c->ctx, reqs, n, op, lease_id, out, released, &io_errno, &replied);
        if (res == PASS_OK)
            return RK_OK;
        if (res == PASS_FAILED)
            return RK_ERR;
        if (res == PASS_IO) {
            bool retry = !fresh && !replied && rk_redis_looks_stale(c->ctx, io_errno);
            conn_drop(c);
            if (!retry || conn_open(s, c, NULL, 0) != RK_OK)
                return RK_ERR;
            fresh = true;
            continue;
        }
        /* NOSCRIPT: Redis restarted or SCRIPT FLUSH. Reload once and resend those. */
        if (reloaded)
            return RK_ERR;
        reloaded = true;
        if (rk_redis_append_script_loads(&s->common, c->ctx) != REDIS_OK) {
            conn_drop(c);
            return RK_ERR;
        }
        if (rk_redis_read_script_loads(&s->common, c->ctx, NULL, 0) != RK_OK) {
            if (c->ctx->err)
                conn_drop(c);
            return RK_ERR;
        }
    }
}

/* Script calls of a batch through the breaker. */
static rk_status_t guarded_scripts(rk_redis_store_t *s, const rk_store_req_t *reqs, size_t n,
                                   rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                                   bool *released) {
    rk_breaker_ticket_t ticket;
    if (!rk_redis_gate_enter(&s->gate, &ticket))
        return RK_ERR;
    rk_redis_conn_t *c = thread_conn(s);
    rk_status_t st = c ? run_scripts(s, c, reqs, n, op, lease_id, out, released) : RK_ERR;
    rk_redis_gate_leave(&s->gate, ticket, st == RK_OK, s->who);
    return st;
}

/*
 * One plain (idempotent) command through the breaker, resent once on a
 * connection the server had closed. *reply (owned by the caller) is the
 * reply unless RK_ERR; an error reply is RK_ERR.
 */
static rk_status_t guarded_command(rk_redis_store_t *s, int argc, const char **argv,
                                   const size_t *lens, redisReply **reply) {
    rk_breaker_ticket_t ticket;
    *reply = NULL;
    if (!rk_redis_gate_enter(&s->gate, &ticket))
        return RK_ERR;
    rk_redis_conn_t *c = thread_conn(s);
    rk_status_t st = RK_ERR;
    for (int attempt = 0; c && attempt < 2; attempt++) {
        bool fresh = false;
        if (!c->ctx) {
            if (conn_open(s, c, NULL, 0) != RK_OK)
                break;
            fresh = true;
        }
        errno = 0;
        redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
        if (!r) {
            bool retry = !fresh && rk_redis_looks_stale(c->ctx, errno);
            conn_drop(c);
            if (retry)
                continue;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            break;
        }
        *reply = r;
        st = RK_OK;
        break;
    }
    rk_redis_gate_leave(&s->gate, ticket, st == RK_OK, s->who);
    return st;
}

/* ================================================================ */
/* Store operations                                                  */
/* ================================================================ */

/* ================================================================ */
/* Requests in flight together (decide_async)                        */
/* ================================================================ */

/* Most requests one round trip of the I/O thread sends. */
#define PIPELINE_MAX 512

/* One decide_async() call, queued. */
typedef struct async_job {
    const rk_store_req_t *reqs;
    size_t n;
    rk_decision_t *out;
    void (*done)(void *ctx, rk_status_t st);
    void *ctx;
    struct async_job *next;
} async_job_t;

/*
 * The I/O thread: takes every queued job (up to PIPELINE_MAX requests),
 * decides them in one pipelined round trip through the breaker, hands each
 * job its decisions and calls its done(), then looks again. Exits once
 * asked to and the queue is empty.
 */
static void *io_main(void *arg) {
    rk_redis_store_t *s = arg;
    rk_store_req_t reqs[PIPELINE_MAX]; /* 64 KiB of this thread's stack */
    rk_decision_t out[PIPELINE_MAX];
    for (;;) {
        pthread_mutex_lock(&s->async_lock);
        while (!s->queue_head && !s->io_stop) {
            s->io_waiting = true;
            pthread_cond_wait(&s->async_wake, &s->async_lock);
            s->io_waiting = false;
        }
        async_job_t *batch = s->queue_head, *last = NULL;
        size_t total = 0;
        for (async_job_t *j = batch; j && total + j->n <= PIPELINE_MAX; j = j->next) {
            total += j->n;
            last = j;
        }
        if (!batch) {
            pthread_mutex_unlock(&s->async_lock);
            break; /* asked to stop, nothing left */
        }
        s->queue_head = last->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->async_lock);

        size_t at = 0;
        for (async_job_t *j = batch; j; j = j->next) {
            memcpy(reqs + at, j->reqs, j->n * sizeof *reqs);
            at += j->n;
        }
        bool unused = false;
        rk_status_t st = guarded_scripts(s, reqs, total, RK_REDIS_OP_DECIDE, NULL, out, &unused);
        at = 0;
        for (async_job_t *j = batch; j; j = j->next) {
            if (st == RK_OK)
                memcpy(j->out, out + at, j->n * sizeof *out);
            at += j->n;
            j->done(j->ctx, st); /* the caller's objects may be gone after this */
        }
        pthread_mutex_lock(&s->async_lock);
        last->next = s->spare_jobs;
        s->spare_jobs = batch;
        pthread_mutex_unlock(&s->async_lock);
    }
    return NULL;
}

/* Queues n requests for the I/O thread (started on first use). */
static rk_status_t redis_decide_async(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                      rk_decision_t *out, void (*done)(void *ctx, rk_status_t st),
                                      void *ctx) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    if (n == 0 || n > PIPELINE_MAX)
        return RK_ERR;
    for (size_t i = 0; i < n; i++)
        if (!rk_redis_req_valid(&s->common, &reqs[i], reqs[i].lease_id))
            return RK_ERR;
    pthread_mutex_lock(&s->async_lock);
    if (RK_UNLIKELY(!s->io_started)) {
        if (s->io_stop || pthread_create(&s->io_thread, NULL, io_main, s) != 0) {
            pthread_mutex_unlock(&s->async_lock);
            return RK_ERR;
        }
        s->io_started = true;
    }
    async_job_t *j = s->spare_jobs;
    if (j)
        s->spare_jobs = j->next;
    else if (!(j = malloc(sizeof *j))) {
        pthread_mutex_unlock(&s->async_lock);
        return RK_ERR;
    }
    *j = (async_job_t){.reqs = reqs, .n = n, .out = out, .done = done, .ctx = ctx};
    if (s->queue_tail)
        s->queue_tail->next = j;
    else
        s->queue_head = j;
    s->queue_tail = j;
    if (s->io_waiting)
        pthread_cond_signal(&s->async_wake);
    pthread_mutex_unlock(&s->async_lock);
    return RK_OK;
}

/* Stops the I/O thread once it has answered every queued job; frees the spare nodes. */
static void async_stop(rk_redis_store_t *s) {
    pthread_mutex_lock(&s->async_lock);
    s->io_stop = true;
    bool started = s->io_started;
    pthread_cond_signal(&s->async_wake);
    pthread_mutex_unlock(&s->async_lock);
    if (started)
        pthread_join(s->io_thread, NULL);
    while (s->spare_jobs) {
        async_job_t *next = s->spare_jobs->next;
        free(s->spare_jobs);
        s->spare_jobs = next;
    }
}

/* Decides n requests in one round trip (see run_scripts). */
static rk_status_t redis_decide(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                rk_decision_t *out) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    if (n == 0)
        return RK_OK;
    for (size_t i = 0; i < n; i++)
        if (!rk_redis_req_valid(&s->common, &reqs[i], reqs[i].lease_id))
            return RK_ERR;
    bool unused = false;
    return guarded_scripts(s, reqs, n, RK_REDIS_OP_DECIDE, NULL, out, &unused);
}

/* Ends a lease: the concurrency script with op "release". */
static rk_status_t redis_release(rk_store_t *base, const rk_store_req_t *req, const char *lease_id,
                                 bool *released) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    *released = false;
    if (!lease_id || !rk_redis_req_valid(&s->common, req, lease_id))
        return RK_ERR;
    rk_decision_t scratch;
    return guarded_scripts(s, req, 1, RK_REDIS_OP_RELEASE, lease_id, &scratch, released);
}

/* Forgets one (rule, key, algorithm): DEL of its key. */
static rk_status_t redis_reset(rk_store_t *base, const char *rule_id, const char *key,
                               rk_algorithm_t alg) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    char k[RK_REDIS_KEY_BUF];
    size_t klen =
        (unsigned)alg < RK_ALG_COUNT ? rk_redis_build_key(&s->common, rule_id, key, alg, k) : 0;
    if (klen == 0)
        return RK_ERR;
    const char *argv[2] = {"DEL", k};
    size_t lens[2] = {3, klen};
    redisReply *r;
    if (guarded_command(s, 2, argv, lens, &r) != RK_OK)
        return RK_ERR;
    freeReplyObject(r);
    return RK_OK;
}

static bool redis_healthy(rk_store_t *base) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    return rk_redis_gate_healthy(&s->gate);
}

/* DBSIZE of the selected database (every key there, not only ratekit's); -1 on failure. */
static int64_t redis_key_count(rk_store_t *base) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    const char *argv[1] = {"DBSIZE"};
    size_t lens[1] = {6};
    redisReply *r;
    if (guarded_command(s, 1, argv, lens, &r) != RK_OK)
        return -1;
    int64_t n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/*
 * Frees every thread's context and the store. No other thread may be using
 * the store (nor exit after having used it) while this runs.
 */
static void redis_destroy(rk_store_t *base) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    if (!s)
        return;
    async_stop(s); /* its connection is freed as the thread exits */
    rk_thread_records_destroy(&s->conns);
    pthread_mutex_destroy(&s->async_lock);
    pthread_cond_destroy(&s->async_wake);
    free(s);
}

static const rk_store_ops_t redis_ops = {
    .name = "redis",
    .decide = redis_decide,
    .decide_async = redis_decide_async,
    .release = redis_release,
    .reset = redis_reset,
    .healthy = redis_healthy,
    .key_count = redis_key_count,
    .destroy = redis_destroy,
};

rk_store_t *rk_redis_store_new(const rk_redis_config_t *cfg, char *err, size_t errlen) {
    rk_redis_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        rk_redis_set_err(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (rk_redis_common_init(&s->common, "redis", cfg->scripts, cfg->key_prefix,
                             cfg->connect_timeout_ms, cfg->timeout_ms, err, errlen) != RK_OK ||
        rk_redis_url_parse(cfg->url, &s->url, err, errlen) != RK_OK) {
        free(s);
        return NULL;
    }
    s->base.ops = &redis_ops;
    snprintf(s->who, sizeof s->who, "redis at %s:%d", s->url.host, s->url.port);
    if (rk_thread_records_init(&s->conns, sizeof(rk_redis_conn_t), conn_record_drop) != RK_OK) {
        rk_redis_set_err(err, errlen, "redis: no thread-local key left");
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->async_lock, NULL);
    pthread_cond_init(&s->async_wake, NULL);
    rk_redis_gate_init(&s->gate);
    rk_redis_ignore_sigpipe();
    return &s->base;
}

/*
 * Connects this thread if needed and PINGs, whatever the breaker says: for
 * start-up, where the caller decides what an unreachable Redis means.
 */
rk_status_t rk_redis_store_ping(rk_store_t *base, char *err, size_t errlen) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    rk_redis_conn_t *c = thread_conn(s);
    if (!c) {
        rk_redis_set_err(err, errlen, "redis: out of memory");
        return RK_ERR;
    }
    if (!c->ctx && conn_open(s, c, err, errlen) != RK_OK)
        return RK_ERR;
    redisReply *r = redisCommand(c->ctx, "PING");
    if (!r || r->type != REDIS_REPLY_STATUS) {
        char detail[256];
        rk_redis_describe_failure(c->ctx, r, "PING", detail, sizeof detail);
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", s->url.host, s->url.port, detail);
        if (r)
            freeReplyObject(r);
        conn_drop(c);
        return RK_ERR;
    }
    freeReplyObject(r);
    return RK_OK;
}
