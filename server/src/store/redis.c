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
 * the wrong shape) answers RK_ERR, and the check path applies its fail mode
 * to the requests that failed: those whose replies came (Redis counted them)
 * keep their decisions (store.h, RK_STORE_UNDECIDED).
 * Every command is bounded by the command timeout (SO_RCVTIMEO/SO_SNDTIMEO,
 * set again on each new context); a context that saw an I/O error is freed.
 * A circuit breaker shared by all threads stops calling Redis after a few
 * consecutive failures and lets one probe of the prober thread through per
 * cool-down (a check never waits on a probe): that is also the reconnection
 * backoff. A context found dead at its first use after
 * a while (Redis restarted: EOF or reset on the first reply) is replaced and
 * the command sent once more, so a restart costs no failed check. While the
 * store is unhealthy (from the start when the first connection failed), a
 * prober thread of its own (redis_common.h) runs a script that writes
 * through the breaker, so that health comes back without a check, and
 * only once Redis takes writes again.
 *
 * Requests in flight together. decide_async() is the check path of
 * suspended connections. On a data-plane event loop (../http/loop.h) it
 * queues the requests on that loop's own connection, which sends what one
 * round of HTTP work queued in one write, behind the writes still out, as
 * one call of the batch script (every algorithm's script in one,
 * redis_common.h) or, for a round of a few checks, an EVALSHA each, and
 * reads the replies when the loop sees them come in: the whole check stays
 * on one thread, concurrent checks share round trips and Redis's cost of a
 * call, and no check waits for another's reply to be sent. Anywhere else it decides at
 * once, like decide() (batches, releases, the admin plane), on the calling
 * thread's connection.
 *
 * Every connection reads its replies through an arena (reply_arena.h), so a
 * check's reply costs no allocation: they are freed with rk_reply_free().
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
#include <sys/socket.h>

#include "../http/loop.h"
#include "../log.h"
#include "redis_common.h"
#include "reply_arena.h"
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

    rk_redis_gate_t gate;     /* circuit breaker shared by every thread */
    rk_redis_prober_t prober; /* probes while unhealthy (redis_probe) */
    /* When a failed reconnection was last logged (monotonic ms; at most one
     * line every RECONNECT_LOG_MS, however many threads and probes fail). */
    _Atomic int64_t reconnect_logged_ms;
    _Atomic int64_t noscript_logged_ms; /* the same for NOSCRIPT to an EVAL */
};

#define RECONNECT_LOG_MS 30000

/* ================================================================ */
/* Connections                                                       */
/* ================================================================ */

/* Frees a context (NULL is fine). */
static void ctx_drop(redisContext **ctx) {
    if (*ctx) {
        rk_reply_context_free(*ctx);
        *ctx = NULL;
    }
}

/* Frees a thread's context. */
static void conn_drop(rk_redis_conn_t *c) {
    ctx_drop(&c->ctx);
}

static void conn_record_drop(rk_thread_record_t *r) {
    conn_drop((rk_redis_conn_t *)r);
}

/* This thread's connection record, created (not connected) on first use. */
static rk_redis_conn_t *thread_conn(rk_redis_store_t *s) {
    return (rk_redis_conn_t *)rk_thread_record(&s->conns);
}

/* The commands a new connection sends first: AUTH and SELECT when the URL
 * asks for them, then SCRIPT LOAD of every script. */
typedef struct {
    bool auth, select;
    int count;
} conn_init_t;

/* The name of a new connection's i-th first command, for messages. */
static const char *init_command(const conn_init_t *in, int i) {
    if (in->auth && i == 0)
        return "AUTH";
    return i < (int)in->auth + (int)in->select ? "SELECT" : "SCRIPT LOAD";
}

/*
 * TCP with the connect timeout, the command timeout on the socket, then the
 * first commands (*in) written; their replies are the caller's to read.
 * NULL with err set when Redis cannot be reached.
 */
static redisContext *conn_dial(rk_redis_store_t *s, conn_init_t *in, char *err, size_t errlen) {
    redisContext *ctx = rk_redis_connect_store(&s->common, s->url.host, s->url.port, err, errlen);
    if (!ctx)
        return NULL;
    char dbtext[16];
    int dblen = snprintf(dbtext, sizeof dbtext, "%d", s->url.db);
    in->auth = s->url.password[0] != '\0';
    in->select = s->url.db != 0;
    in->count = (int)in->auth + (int)in->select + s->common.scripts;
    int ok = in->auth ? rk_redis_append_auth(ctx, s->url.user, s->url.password) : REDIS_OK;
    if (ok == REDIS_OK && in->select) {
        const char *argv[2] = {"SELECT", dbtext};
        size_t lens[2] = {6, (size_t)dblen};
        ok = redisAppendCommandArgv(ctx, 2, argv, lens);
    }
    if (ok == REDIS_OK)
        ok = rk_redis_append_script_loads(&s->common, ctx);
    for (int done = 0; ok == REDIS_OK && !done;) /* a few KiB into an empty socket */
        ok = redisBufferWrite(ctx, &done);
    if (ok != REDIS_OK) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", s->url.host, s->url.port,
                         ctx->err ? ctx->errstr : "out of memory");
        rk_reply_context_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Whether r is the right reply to a new connection's i-th first command;
 * why not in detail. */
static bool init_reply_ok(const rk_redis_store_t *s, const redisContext *ctx, const conn_init_t *in,
                          int i, const redisReply *r, char *detail, size_t cap) {
    int script = i - (int)in->auth - (int)in->select;
    bool ok = script < 0 ? r->type == REDIS_REPLY_STATUS
                         : r->type == REDIS_REPLY_STRING && r->len == RK_REDIS_SHA_HEX &&
                               memcmp(r->str, s->common.sha[script], RK_REDIS_SHA_HEX) == 0;
    if (!ok)
        rk_redis_describe_failure(ctx, r, init_command(in, i), detail, cap);
    return ok;
}

/*
 * Connects *slot and waits for the first commands' replies (the calling
 * thread's own connection, off a loop). On RK_ERR *slot stays NULL and err
 * says why.
 */
static rk_status_t conn_connect(rk_redis_store_t *s, redisContext **slot, char *err,
                                size_t errlen) {
    ctx_drop(slot);
    conn_init_t in;
    redisContext *ctx = conn_dial(s, &in, err, errlen);
    if (!ctx)
        return RK_ERR;
    /* Read every reply, even after a wrong one, then judge. */
    char detail[256] = "";
    rk_status_t st = RK_OK;
    for (int i = 0; i < in.count; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            rk_redis_describe_failure(ctx, NULL, init_command(&in, i), detail, sizeof detail);
            st = RK_ERR;
            break;
        }
        if (st == RK_OK && !init_reply_ok(s, ctx, &in, i, r, detail, sizeof detail))
            st = RK_ERR;
        rk_reply_free(r);
    }
    if (st != RK_OK) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", s->url.host, s->url.port, detail);
        rk_reply_context_free(ctx);
        return RK_ERR;
    }
    *slot = ctx;
    return RK_OK;
}

/* Whether a line may be logged now, at most every RECONNECT_LOG_MS (*logged_ms: when last). */
static bool log_due(_Atomic int64_t *logged_ms) {
    int64_t now = rk_mono_ms(), last = atomic_load(logged_ms);
    return (last == 0 || now - last >= RECONNECT_LOG_MS) &&
           atomic_compare_exchange_strong(logged_ms, &last, now);
}

/* Logs why a reconnection while serving failed, at most every RECONNECT_LOG_MS. */
static void log_reconnect_failure(rk_redis_store_t *s, const char *why) {
    if (log_due(&s->reconnect_logged_ms))
        rk_warn("%s (reconnecting)", why);
}

/* Logs, at most every RECONNECT_LOG_MS, that Redis answered NOSCRIPT even to an EVAL. */
static void log_scripts_lost(rk_redis_store_t *s) {
    if (log_due(&s->noscript_logged_ms))
        rk_warn("%s: NOSCRIPT to the EVAL of a script: those checks took their fail mode", s->who);
}

/*
 * conn_connect; why it failed goes to err, or without one (a reconnection
 * while serving) to the log, so that a wrong password or a full Redis is
 * named and not only "failing".
 */
static rk_status_t conn_open(rk_redis_store_t *s, redisContext **slot, char *err, size_t errlen) {
    char why[256] = "";
    rk_status_t st = conn_connect(s, slot, why, sizeof why);
    if (st == RK_OK)
        return st;
    if (err) {
        snprintf(err, errlen, "%s", why);
        return st;
    }
    log_reconnect_failure(s, why);
    return st;
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

/* out[i].limit marks request i as still to be (re)sent; one that fails
 * keeps it, which tells the caller it was not decided (store.h). */
#define PENDING RK_STORE_UNDECIDED

/* Appends one script call: EVALSHA, or (source) EVAL of the script, after a NOSCRIPT. */
static int append_call(const rk_redis_store_t *s, redisContext *ctx, const rk_store_req_t *req,
                       rk_redis_op_t op, const char *lease_id, bool source) {
    return source ? rk_redis_append_eval_source(&s->common, ctx, req, op, lease_id)
                  : rk_redis_append_eval(&s->common, ctx, req, op, lease_id);
}

/*
 * Sends every pending request in one pipeline (source: as EVAL of the
 * script) and reads every reply. *io_errno receives errno of an I/O failure
 * (to tell a stale connection from a timeout); *replied whether any reply
 * was read before it.
 */
static pass_result_t run_pass(rk_redis_store_t *s, redisContext *ctx, const rk_store_req_t *reqs,
                              size_t n, rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                              bool *released, bool source, int *io_errno, bool *replied) {
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].limit != PENDING)
            continue;
        if (append_call(s, ctx, &reqs[i], op, lease_id, source) != REDIS_OK)
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
        rk_reply_free(r);
    }
    return res;
}

/*
 * Runs n script calls on this thread's connection: one round trip, plus one
 * more after a NOSCRIPT (Redis restarted or SCRIPT FLUSH: those calls are
 * resent as EVAL of the script, which caches it again and cannot meet
 * NOSCRIPT, however often the scripts are flushed), plus one more when the
 * connection turns out to have been closed by the server before anything
 * was answered. RK_ERR on any other failure.
 */
static rk_status_t run_scripts(rk_redis_store_t *s, redisContext **ctx, const rk_store_req_t *reqs,
                               size_t n, rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                               bool *released) {
    bool fresh = false;
    if (!*ctx) {
        if (conn_open(s, ctx, NULL, 0) != RK_OK)
            return RK_ERR;
        fresh = true;
    }
    for (size_t i = 0; i < n; i++)
        out[i].limit = PENDING;
    bool source = false;
    for (;;) {
        int io_errno = 0;
        bool replied = false;
        pass_result_t res =
            run_pass(s, *ctx, reqs, n, op, lease_id, out, released, source, &io_errno, &replied);
        if (res == PASS_OK)
            return RK_OK;
        if (res == PASS_FAILED)
            return RK_ERR;
        if (res == PASS_IO) {
            bool retry = !fresh && !replied && rk_redis_looks_stale(*ctx, io_errno);
            ctx_drop(ctx);
            if (!retry || conn_open(s, ctx, NULL, 0) != RK_OK)
                return RK_ERR;
            fresh = true;
            continue;
        }
        if (source) { /* NOSCRIPT to an EVAL: not a Redis this store can use */
            log_scripts_lost(s);
            return RK_ERR;
        }
        source = true;
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
    rk_status_t st = c ? run_scripts(s, &c->ctx, reqs, n, op, lease_id, out, released) : RK_ERR;
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
            if (conn_open(s, &c->ctx, NULL, 0) != RK_OK)
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
            rk_reply_free(r);
            break;
        }
        *reply = r;
        st = RK_OK;
        break;
    }
    rk_redis_gate_leave(&s->gate, ticket, st == RK_OK, s->who);
    return st;
}

/*
 * The prober's call (redis_common.h): the probe's script call, which writes
 * <prefix>:{_probe:health}:fixed_window (rk_redis_probe_req), through the
 * breaker, on the prober thread's own connection, opened again by the normal
 * path (AUTH, SELECT, scripts) when it was lost. Its outcome is the store's
 * health: a Redis that refuses writes stays unhealthy.
 */
static void redis_probe(rk_store_t *base) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    const rk_store_req_t req = rk_redis_probe_req("health");
    rk_decision_t out;
    bool unused = false;
    guarded_scripts(s, &req, 1, RK_REDIS_OP_DECIDE, NULL, &out, &unused);
}

/* ================================================================ */
/* On an event loop (../http/loop.h)                                 */
/* ================================================================ */

/* Most requests a loop has out on its connection at once. */
#define PIPELINE_MAX 512
/*
 * The fewest requests sent as one call of the batch script. A call costs
 * Redis more than an EVALSHA of its own, and each request in it less
 * (Redis's CPU per token-bucket decision, pipelined over 10,000 keys:
 * 6.9 us as an EVALSHA each, 7.8 us in calls of 2, 6.5-6.7 us of 3, 5.8 us
 * of 4, 4.2 us of 64): fewer go as an EVALSHA each.
 */
#define BATCH_MIN 3

/* One decide_async() or release_async() call, queued on a loop. */
typedef struct async_job {
    const rk_store_req_t *reqs;
    size_t n;
    rk_decision_t *out;
    rk_redis_op_t op;
    const char *lease_id;  /* op release: the lease to end */
    bool *released;        /* op release: whether it was live */
    rk_decision_t scratch; /* op release: its out */
    void (*done)(void *ctx, rk_status_t st);
    void *ctx;
    struct async_job *next;
    rk_status_t st;             /* RK_ERR once a reply was wrong */
    bool noscript;              /* some reply was NOSCRIPT */
    int64_t sent_ms;            /* when its batch was sent (monotonic) */
    bool batch_end;             /* the last job of its batch, which holds... */
    rk_breaker_ticket_t ticket; /* ...the batch's pass through the breaker */
} async_job_t;

/*
 * A loop's own connection and the jobs it carries: those the current round
 * of HTTP work queued (waiting), and those out on the connection (flight,
 * in the order their replies come), sent in batches, a round's jobs being
 * one batch. A batch goes out as soon as its round ends, behind the
 * batches still out: Redis answers in order, so it need not wait for them.
 * Only the loop's thread touches it.
 */
typedef struct {
    rk_loop_source_t src; /* first */
    rk_redis_store_t *s;
    redisContext *ctx;
    async_job_t *waiting, *waiting_tail;
    async_job_t *flight, *flight_tail;
    size_t out;            /* requests in flight */
    size_t replies_read;   /* of the flight head's batch, sent as an EVALSHA each */
    async_job_t *noscript; /* answered, some of it NOSCRIPT: to send again */
    bool fresh;            /* ctx was opened when the flight began */
    conn_init_t init;      /* a fresh ctx's first commands... */
    int init_read;         /* ...and how many of their replies were read */
    bool replied;          /* a reply was read since the flight began */
    async_job_t *spare;    /* nodes for reuse: no malloc per request */
    /* A round's requests, written here and sent from here: hiredis's own
     * output buffer is freed after each write and grown again by realloc. */
    char *obuf;
    size_t obuf_cap;
    /* A batch call's sets of script arguments, and the set of each of its
     * requests, in order (pending_sets). */
    rk_redis_call_args_t set_args[PIPELINE_MAX];
    uint16_t set_of[PIPELINE_MAX];
} loop_pipe_t;

static void pipe_recycle(loop_pipe_t *p, async_job_t *j) {
    j->next = p->spare;
    p->spare = j;
}

/* Ends a job: its node goes back to the spares, then done() with st. */
static void pipe_finish(loop_pipe_t *p, async_job_t *j, rk_status_t st) {
    async_job_t job = *j;
    pipe_recycle(p, j);
    job.done(job.ctx, st); /* resumes a connection: the job's memory may go */
}

static void pipe_finish_all(loop_pipe_t *p, async_job_t **list, rk_status_t st) {
    while (*list) {
        async_job_t *j = *list;
        *list = j->next;
        pipe_finish(p, j, st);
    }
}

/* Fails every job the round queued (the connection or the breaker said no). */
static void pipe_fail_waiting(loop_pipe_t *p) {
    pipe_finish_all(p, &p->waiting, RK_ERR);
    p->waiting_tail = NULL;
}

static int64_t command_timeout_ms(const rk_redis_store_t *s) {
    return (int64_t)s->common.command_tv.tv_sec * 1000 + s->common.command_tv.tv_usec / 1000;
}

/* Replies are late once the oldest batch out has waited the command timeout. */
static void pipe_set_deadline(loop_pipe_t *p) {
    p->src.deadline_ms = p->flight ? p->flight->sent_ms + command_timeout_ms(p->s) : 0;
}

/* Takes the flight's head job off (its reply is read, or never will be). */
static async_job_t *flight_pop(loop_pipe_t *p) {
    async_job_t *j = p->flight;
    p->flight = j->next;
    if (!p->flight)
        p->flight_tail = NULL;
    p->out -= j->n;
    return j;
}

/*
 * Ends every job out with the connection, which is gone: sent once more on
 * a new one when `again` (see pipe_broken), failed otherwise. The breaker
 * counts one failure, however many batches were out (a probe is always
 * answered).
 */
static void flight_end(loop_pipe_t *p, bool again) {
    rk_redis_store_t *s = p->s;
    bool ok = again, counted = false; /* ok: the batch's */
    p->replies_read = 0;
    while (p->flight) {
        async_job_t *j = flight_pop(p);
        rk_status_t st =
            again ? run_scripts(s, &p->ctx, j->reqs, j->n, j->op, j->lease_id, j->out, j->released)
                  : RK_ERR;
        ok = ok && st == RK_OK;
        bool batch_end = j->batch_end;
        rk_breaker_ticket_t ticket = j->ticket;
        pipe_finish(p, j, st); /* j is recycled */
        if (!batch_end)
            continue;
        if (ok || !counted || ticket == RK_BREAKER_PROBE)
            rk_redis_gate_leave(&s->gate, ticket, ok, s->who);
        counted = counted || !ok;
        ok = again;
    }
}

/*
 * The connection failed (io_errno) with batches out: drop it and end them.
 * When Redis had closed it before reading anything (it restarted while the
 * connection sat idle), nothing was run: the jobs are sent once more on a
 * new connection, waiting on this thread, so that a restart costs no
 * failed check.
 */
static void pipe_broken(loop_pipe_t *p, int io_errno) {
    bool stale = !p->fresh && !p->replied && rk_redis_looks_stale(p->ctx, io_errno);
    ctx_drop(&p->ctx);
    flight_end(p, stale);
    pipe_finish_all(p, &p->noscript, RK_ERR);
    pipe_set_deadline(p);
    p->src.fd = p->ctx ? p->ctx->fd : -1;
}

/* Whether obuf has need bytes of room after len (grown if not). */
static bool obuf_room(loop_pipe_t *p, size_t len, size_t need) {
    if (p->obuf_cap - len >= need)
        return true;
    size_t cap = p->obuf_cap ? p->obuf_cap : 64 * RK_REDIS_EVAL_MAX;
    while (cap - len < need)
        cap *= 2;
    char *grown = realloc(p->obuf, cap);
    if (!grown)
        return false;
    p->obuf = grown;
    p->obuf_cap = cap;
    return true;
}

/* The jobs from first through last (NULL: to the list's end). */
#define FOR_JOBS(j, first, last) for (j = (first); j; j = j == (last) ? NULL : j->next)

/* The requests still to be decided of the jobs from first through last. */
static size_t pending_count(const async_job_t *first, const async_job_t *last) {
    size_t n = 0;
    const async_job_t *j;
    FOR_JOBS (j, first, last)
        for (size_t i = 0; i < j->n; i++)
            n += j->out[i].limit == PENDING;
    return n;
}

/* The parts of a request on the wire: an EVALSHA of its own, or its key in a batch call. */
typedef enum { PART_EVALSHA, PART_KEY } part_t;

/* Writes one part of request i of job j at `at`; answers its length. */
static size_t part_format(const rk_redis_common_t *c, const async_job_t *j, size_t i, part_t part,
                          char *at) {
    if (part == PART_KEY)
        return rk_redis_format_batch_key(c, &j->reqs[i], at);
    return rk_redis_format_eval(c, &j->reqs[i], j->op, j->lease_id, at);
}

/*
 * Writes into obuf, after *len bytes, one part of each request still to be
 * decided of the jobs from first through last; false when out of memory.
 */
static bool pending_parts(loop_pipe_t *p, size_t *len, const async_job_t *first,
                          const async_job_t *last, part_t part) {
    const rk_redis_common_t *c = &p->s->common;
    const async_job_t *j;
    FOR_JOBS (j, first, last)
        for (size_t i = 0; i < j->n; i++) {
            if (j->out[i].limit != PENDING)
                continue;
            if (!obuf_room(p, *len, RK_REDIS_EVAL_MAX))
                return false;
            *len += part_format(c, j, i, part, p->obuf + *len);
        }
    return true;
}

/* How many of the last sets a request's arguments are compared with (pending_sets). */
#define SET_SCAN 16

/*
 * Groups the requests still to be decided of the jobs from first through
 * last by their script arguments: p->set_args holds each set, p->set_of
 * each request's; *sets their number. False when they are more than
 * PIPELINE_MAX, which cannot be: a batch takes at most PIPELINE_MAX less
 * those out, and no batch goes out while jobs wait to be sent again after
 * a NOSCRIPT. A request is compared with the SET_SCAN sets made last only,
 * so that grouping stays linear in the requests: a round's checks mostly
 * share a rule, and a request whose set lies further back makes it again.
 * A request with a lease (concurrency) makes its own without looking.
 */
static bool pending_sets(loop_pipe_t *p, const async_job_t *first, const async_job_t *last,
                         size_t *sets) {
    size_t made = 0, k = 0;
    const async_job_t *j;
    FOR_JOBS (j, first, last)
        for (size_t i = 0; i < j->n; i++) {
            if (j->out[i].limit != PENDING)
                continue;
            if (k == PIPELINE_MAX)
                return false;
            rk_redis_call_args_t args;
            rk_redis_call_args(&j->reqs[i], j->op, j->lease_id, &args);
            size_t set = made;
            /* A lease is one request's: its arguments are no other's. */
            for (size_t back = 1; back <= SET_SCAN && back <= made && !args.lease_len; back++)
                if (rk_redis_call_args_equal(&p->set_args[made - back], &args)) {
                    set = made - back;
                    break;
                }
            if (set == made)
                p->set_args[made++] = args;
            p->set_of[k++] = (uint16_t)set;
        }
    *sets = made;
    return true;
}

/*
 * Writes into obuf, after *len bytes, the sets of a batch call of n
 * requests (rk_redis_format_batch_head): their number, their arguments,
 * and, when there are several but fewer than requests, each request's;
 * false when out of memory. (As many sets as requests are theirs in order:
 * each made its own.)
 */
static bool sets_format(loop_pipe_t *p, size_t *len, size_t n, size_t sets) {
    if (!obuf_room(p, *len, RK_REDIS_EVAL_MAX))
        return false;
    *len += rk_redis_format_batch_int(sets, p->obuf + *len);
    for (size_t s = 0; s < sets; s++) {
        if (!obuf_room(p, *len, RK_REDIS_EVAL_MAX))
            return false;
        *len += rk_redis_format_batch_args(&p->set_args[s], p->obuf + *len);
    }
    for (size_t k = 0; rk_redis_batch_names_sets(n, sets) && k < n; k++) {
        if (!obuf_room(p, *len, RK_REDIS_EVAL_MAX))
            return false;
        *len += rk_redis_format_batch_int((size_t)p->set_of[k] + 1, p->obuf + *len);
    }
    return true;
}

/*
 * Writes into obuf the requests still to be decided of the jobs from first
 * through last: as one call of the batch script (batched; EVAL of its
 * source when source), or as an EVALSHA each. Answers the length, 0 when
 * out of memory.
 */
static size_t pending_format(loop_pipe_t *p, const async_job_t *first, const async_job_t *last,
                             bool batched, bool source) {
    const rk_redis_common_t *c = &p->s->common;
    size_t len = 0;
    if (!batched)
        return pending_parts(p, &len, first, last, PART_EVALSHA) ? len : 0;
    size_t n = pending_count(first, last), sets;
    if (!pending_sets(p, first, last, &sets) ||
        !obuf_room(p, 0, RK_REDIS_BATCH_HEAD_MAX + (source ? c->script_len[RK_REDIS_BATCH] : 0)))
        return 0;
    len = rk_redis_format_batch_head(c, n, sets, source, p->obuf);
    bool ok = pending_parts(p, &len, first, last, PART_KEY) && sets_format(p, &len, n, sets);
    return ok ? len : 0;
}

/* Takes the reply to request i of job j: a NOSCRIPT marks the job to be sent again. */
static void take_reply(async_job_t *j, size_t i, const redisReply *r) {
    if (is_noscript(r))
        j->noscript = true;
    else if (!rk_redis_parse_reply(r, &j->reqs[i], j->op, &j->out[i], j->released))
        j->st = RK_ERR;
    else if (j->op == RK_REDIS_OP_RELEASE)
        j->out[i].limit = 0; /* done */
}

/*
 * Takes a batch-script call's reply into the requests still to be decided
 * of the jobs from first through last, in order. A job any of whose
 * requests got no right answer (an error in its place, a reply of the
 * wrong shape) ends RK_ERR, those requests staying undecided (store.h); a
 * NOSCRIPT to the call marks every job to be sent again.
 */
static void batch_take_reply(async_job_t *first, const async_job_t *last, const redisReply *r) {
    size_t total = pending_count(first, last), k = 0;
    bool whole = r->type == REDIS_REPLY_ARRAY && r->elements == total;
    async_job_t *j;
    FOR_JOBS (j, first, last)
        for (size_t i = 0; i < j->n; i++) {
            if (j->out[i].limit != PENDING)
                continue;
            if (whole)
                take_reply(j, i, r->element[k++]);
            else if (is_noscript(r))
                j->noscript = true;
            else
                j->st = RK_ERR;
        }
}

/*
 * Writes obuf's first len bytes to the connection; answers 0, or the errno
 * of the failure, recorded in the context as hiredis records its own write
 * errors. The socket blocks, each write for at most the command timeout
 * (SO_SNDTIMEO), as hiredis's writes do.
 */
static int obuf_write(loop_pipe_t *p, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t n = send(p->ctx->fd, p->obuf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n == 0 || errno != EINTR) {
            int failure = n == 0 ? EPIPE : errno;
            p->ctx->err = REDIS_ERR_IO;
            snprintf(p->ctx->errstr, sizeof p->ctx->errstr, "%s", strerror(failure));
            return failure;
        }
    }
    return 0;
}

/* Writes what hiredis holds for the connection (blocking, within the command timeout). */
static bool ctx_flush(redisContext *ctx) {
    for (int done = 0; !done;)
        if (redisBufferWrite(ctx, &done) != REDIS_OK)
            return false;
    return true;
}

/*
 * Redis had lost the scripts (restarted, SCRIPT FLUSH): loads them again
 * (SCRIPT LOAD of each, so that the next rounds' EVALSHAs find them), and
 * sends the requests that got NOSCRIPT once more, as one EVAL of the batch
 * script's source (which cannot meet NOSCRIPT, however often the scripts
 * are flushed), waiting for the answers on this thread. Rare enough that a
 * blocking round trip is fine. Each job ends with its own outcome; all
 * fail only when the connection does.
 */
static void pipe_resend_noscript(loop_pipe_t *p) {
    rk_redis_store_t *s = p->s;
    rk_breaker_ticket_t ticket;
    if (!rk_redis_gate_enter(&s->gate, &ticket)) {
        pipe_finish_all(p, &p->noscript, RK_ERR);
        return;
    }
    for (async_job_t *j = p->noscript; j; j = j->next)
        j->noscript = false;
    size_t len = pending_format(p, p->noscript, NULL, true, true);
    bool ok = len > 0 && rk_redis_append_script_loads(&s->common, p->ctx) == REDIS_OK &&
              ctx_flush(p->ctx) && obuf_write(p, len) == 0;
    redisReply *r = NULL;
    for (int i = 0; ok && i < s->common.scripts; i++) { /* the loads' SHAs */
        ok = redisGetReply(p->ctx, (void **)&r) == REDIS_OK;
        rk_reply_free(r);
        r = NULL;
    }
    ok = ok && redisGetReply(p->ctx, (void **)&r) == REDIS_OK;
    if (ok) {
        batch_take_reply(p->noscript, NULL, r);
        if (is_noscript(r))
            log_scripts_lost(s);
        rk_reply_free(r);
    }
    while (p->noscript) {
        async_job_t *j = p->noscript;
        p->noscript = j->next;
        pipe_finish(p, j, ok && !j->noscript ? j->st : RK_ERR);
    }
    if (p->ctx->err) {
        ctx_drop(&p->ctx);
        p->src.fd = -1;
    }
    rk_redis_gate_leave(&s->gate, ticket, ok, s->who);
}

/*
 * Reads the replies to a fresh connection's first commands, as they come;
 * false when one is wrong (the connection is then given up, its reason
 * logged) or not all came yet.
 */
static bool pipe_take_init_replies(loop_pipe_t *p) {
    while (p->fresh && p->init_read < p->init.count) {
        void *reply = NULL;
        if (redisGetReplyFromReader(p->ctx, &reply) != REDIS_OK) {
            pipe_broken(p, EPROTO);
            return false;
        }
        if (!reply)
            return false;
        char detail[256] = "", why[640];
        bool ok =
            init_reply_ok(p->s, p->ctx, &p->init, p->init_read++, reply, detail, sizeof detail);
        rk_reply_free(reply);
        if (!ok) {
            snprintf(why, sizeof why, "redis at %s:%d: %s", p->s->url.host, p->s->url.port, detail);
            log_reconnect_failure(p->s, why);
            pipe_broken(p, EPROTO);
            return false;
        }
    }
    return true;
}

/* The last job of the batch that starts with job first. */
static async_job_t *batch_last(async_job_t *first) {
    while (!first->batch_end)
        first = first->next;
    return first;
}

/*
 * Takes one reply to the flight's head batch; true when it was the last
 * the batch waits for: one when it went as a batch-script call (BATCH_MIN
 * requests or more, as pipe_send sent it), else one per request.
 */
static bool flight_take_reply(loop_pipe_t *p, const redisReply *reply) {
    async_job_t *first = p->flight, *last = batch_last(first), *j;
    size_t total = 0;
    FOR_JOBS (j, first, last)
        total += j->n;
    if (total >= BATCH_MIN) {
        batch_take_reply(first, last, reply);
        return true;
    }
    size_t k = p->replies_read++, seen = 0;
    FOR_JOBS (j, first, last) {
        if (k >= seen && k < seen + j->n)
            take_reply(j, k - seen, reply);
        seen += j->n;
    }
    if (p->replies_read < total)
        return false;
    p->replies_read = 0;
    return true;
}

/*
 * Ends the flight's head batch, whose reply was read: each job with its
 * outcome (those that met NOSCRIPT wait to be sent again), then one call
 * for the breaker.
 */
static void batch_finish(loop_pipe_t *p) {
    bool failed = false;
    for (;;) {
        async_job_t *j = flight_pop(p);
        bool batch_end = j->batch_end;
        rk_breaker_ticket_t ticket = j->ticket;
        failed = failed || j->st != RK_OK;
        if (j->noscript) { /* sent again once the flight is answered */
            j->next = p->noscript;
            p->noscript = j;
        } else {
            pipe_finish(p, j, j->st); /* j is recycled */
        }
        if (batch_end) {
            rk_redis_gate_leave(&p->s->gate, ticket, !failed, p->s->who);
            return;
        }
    }
}

/* Reads the replies that came in; ends each batch's jobs once it is answered. */
static void pipe_take_replies(loop_pipe_t *p) {
    if (!pipe_take_init_replies(p))
        return;
    while (p->flight) {
        void *reply = NULL;
        if (redisGetReplyFromReader(p->ctx, &reply) != REDIS_OK) {
            pipe_broken(p, EPROTO);
            return;
        }
        if (!reply)
            return; /* the rest has not come yet */
        p->replied = true;
        bool answered = flight_take_reply(p, reply);
        rk_reply_free(reply);
        if (!answered)
            continue;
        batch_finish(p);
        pipe_set_deadline(p);
    }
    /* Everything out is answered. */
    if (p->noscript)
        pipe_resend_noscript(p);
}

static void pipe_on_ready(rk_loop_source_t *src, bool readable) {
    loop_pipe_t *p = (loop_pipe_t *)src;
    if (!p->flight) { /* idle, yet readable: Redis closed it (or spoke out of turn) */
        ctx_drop(&p->ctx);
        p->src.fd = -1;
        p->src.deadline_ms = 0;
        return;
    }
    if (readable) {
        errno = 0;
        if (redisBufferRead(p->ctx) != REDIS_OK) {
            pipe_broken(p, errno);
            return;
        }
        pipe_take_replies(p);
        if (!p->flight)
            return;
    }
    if (rk_mono_ms() >= p->src.deadline_ms)
        pipe_broken(p, ETIMEDOUT); /* the command timeout: the replies are given up */
}

/*
 * The connection, for a flight that begins; false when Redis cannot be
 * reached. A new one's first commands are written, not waited for: their
 * replies come ahead of the flight's, within its deadline, so that a Redis
 * that accepts connections but does not answer (hung, stopped) never holds
 * the loop.
 */
static bool flight_begin(loop_pipe_t *p) {
    p->fresh = false;
    if (!p->ctx) {
        char why[256] = "";
        if (!(p->ctx = conn_dial(p->s, &p->init, why, sizeof why))) {
            log_reconnect_failure(p->s, why);
            return false;
        }
        p->init_read = 0;
        p->fresh = true;
    }
    p->replied = false;
    p->src.fd = p->ctx->fd;
    return true;
}

/*
 * Moves the waiting jobs that fit in room requests (at least the first,
 * which the caller checked fits) to the flight's tail, as one batch holding
 * ticket; returns its first job.
 */
static async_job_t *batch_take(loop_pipe_t *p, size_t room, rk_breaker_ticket_t ticket) {
    async_job_t *first = p->waiting, *last = first;
    size_t total = last->n;
    while (last->next && total + last->next->n <= room) {
        last = last->next;
        total += last->n;
    }
    p->waiting = last->next;
    if (!p->waiting)
        p->waiting_tail = NULL;
    last->next = NULL;
    last->batch_end = true;
    last->ticket = ticket;
    int64_t now = rk_mono_ms();
    for (async_job_t *j = first; j; j = j->next)
        j->sent_ms = now;
    if (p->flight_tail)
        p->flight_tail->next = first;
    else
        p->flight = first;
    p->flight_tail = last;
    p->out += total;
    pipe_set_deadline(p);
    return first;
}

/*
 * Sends waiting jobs' requests as one batch, through the breaker, behind
 * the batches out, in one write: one call of the batch script, or an
 * EVALSHA each when they are fewer than BATCH_MIN. At most PIPELINE_MAX
 * requests are out at once (a job is never split): the rest waits for
 * replies, so that the replies out always fit the socket's buffers.
 */
static void pipe_send(loop_pipe_t *p) {
    rk_redis_store_t *s = p->s;
    size_t room = PIPELINE_MAX - p->out;
    if (p->waiting->n > room)
        return;
    rk_breaker_ticket_t ticket;
    if (!rk_redis_gate_enter(&s->gate, &ticket)) {
        pipe_fail_waiting(p);
        return;
    }
    if (!p->flight && !flight_begin(p)) {
        rk_redis_gate_leave(&s->gate, ticket, false, s->who);
        pipe_fail_waiting(p);
        return;
    }
    size_t before = p->out;
    async_job_t *first = batch_take(p, room, ticket);
    size_t len = pending_format(p, first, NULL, p->out - before >= BATCH_MIN, false);
    if (!len) {
        pipe_broken(p, ENOMEM);
        return;
    }
    int io_errno = obuf_write(p, len);
    if (io_errno)
        pipe_broken(p, io_errno);
}

static void pipe_after_round(rk_loop_source_t *src) {
    loop_pipe_t *p = (loop_pipe_t *)src;
    /* Jobs that met NOSCRIPT are sent again once the flight is answered:
     * new batches wait for that, lest the flight never end. */
    if (p->waiting && !p->noscript)
        pipe_send(p);
}

static void pipe_close(rk_loop_source_t *src) {
    loop_pipe_t *p = (loop_pipe_t *)src;
    flight_end(p, false);
    pipe_fail_waiting(p);
    ctx_drop(&p->ctx);
    free(p->obuf);
    while (p->spare) {
        async_job_t *next = p->spare->next;
        free(p->spare);
        p->spare = next;
    }
    free(p);
}

/* The store's pipe on the calling thread's loop, made on first use; NULL off a loop (or out of
 * memory). */
static loop_pipe_t *current_pipe(rk_redis_store_t *s) {
    const rk_loop_source_t proto = {.owner = s,
                                    .fd = -1,
                                    .on_ready = pipe_on_ready,
                                    .after_round = pipe_after_round,
                                    .close = pipe_close};
    loop_pipe_t *p = (loop_pipe_t *)rk_loop_source(&proto, sizeof *p);
    if (p)
        p->s = s; /* the same store every time */
    return p;
}

/* Queues a copy of *job (its requests, op and outputs) on the pipe, for the round's batch. */
static rk_status_t pipe_queue(loop_pipe_t *p, const async_job_t *job,
                              void (*done)(void *ctx, rk_status_t st), void *ctx) {
    async_job_t *j = p->spare;
    if (j)
        p->spare = j->next;
    else if (!(j = malloc(sizeof *j)))
        return RK_ERR;
    *j = *job;
    j->done = done;
    j->ctx = ctx;
    j->next = NULL;
    j->st = RK_OK;
    j->noscript = false;
    j->batch_end = false;
    if (j->op == RK_REDIS_OP_RELEASE)
        j->out = &j->scratch;
    for (size_t i = 0; i < j->n; i++) /* what stays so was not decided (store.h) */
        j->out[i].limit = PENDING;
    if (p->waiting_tail)
        p->waiting_tail->next = j;
    else
        p->waiting = j;
    p->waiting_tail = j;
    return RK_OK;
}

/* Decides n requests in one round trip (see run_scripts). */
static rk_status_t redis_decide(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                rk_decision_t *out) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    if (n == 0)
        return RK_OK;
    if (!rk_redis_reqs_valid(reqs, n))
        return RK_ERR;
    bool unused = false;
    return guarded_scripts(s, reqs, n, RK_REDIS_OP_DECIDE, NULL, out, &unused);
}

/*
 * On a loop thread: queues the job on the loop's pipe, sent when the round
 * ends. Anywhere else: decides at once, done() being called before return.
 */
static rk_status_t redis_decide_async(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                      rk_decision_t *out, void (*done)(void *ctx, rk_status_t st),
                                      void *ctx) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    loop_pipe_t *p = current_pipe(s);
    if (!p) {
        done(ctx, redis_decide(base, reqs, n, out));
        return RK_OK;
    }
    if (n == 0 || n > PIPELINE_MAX || !rk_redis_reqs_valid(reqs, n))
        return RK_ERR;
    async_job_t job = {.reqs = reqs, .n = n, .out = out, .op = RK_REDIS_OP_DECIDE};
    return pipe_queue(p, &job, done, ctx);
}

/* Ends a lease: the concurrency script with op "release". */
static rk_status_t redis_release(rk_store_t *base, const rk_store_req_t *req, const char *lease_id,
                                 bool *released) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    *released = false;
    if (!lease_id || !rk_redis_req_valid(req, lease_id))
        return RK_ERR;
    if (req->limit.algorithm != RK_ALG_CONCURRENCY)
        return RK_OK; /* no lease there: another script would spend the units as a check */
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
    rk_reply_free(r);
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
    rk_reply_free(r);
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
    rk_redis_prober_stop(&s->prober); /* first: its thread uses a connection record */
    rk_thread_records_destroy(&s->conns);
    rk_redis_common_free(&s->common);
    free(s);
}

/* release() on a loop's pipe, as redis_decide_async() decides. */
static rk_status_t redis_release_async(rk_store_t *base, const rk_store_req_t *req,
                                       const char *lease_id, bool *released,
                                       void (*done)(void *ctx, rk_status_t st), void *ctx) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    loop_pipe_t *p = current_pipe(s);
    if (!p || req->limit.algorithm != RK_ALG_CONCURRENCY) {
        done(ctx, redis_release(base, req, lease_id, released));
        return RK_OK;
    }
    *released = false;
    if (!lease_id || !rk_redis_req_valid(req, lease_id))
        return RK_ERR;
    async_job_t job = {
        .reqs = req, .n = 1, .op = RK_REDIS_OP_RELEASE, .lease_id = lease_id, .released = released};
    return pipe_queue(p, &job, done, ctx);
}

static const rk_store_ops_t redis_ops = {
    .name = "redis",
    .decide = redis_decide,
    .decide_async = redis_decide_async,
    .release = redis_release,
    .release_async = redis_release_async,
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
    if (rk_redis_common_init(&s->common, "redis", cfg->scripts, true, cfg->key_prefix,
                             cfg->connect_timeout_ms, cfg->timeout_ms, err, errlen) != RK_OK ||
        rk_redis_url_parse(cfg->url, &s->url, err, errlen) != RK_OK) {
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    s->base.ops = &redis_ops;
    snprintf(s->who, sizeof s->who, "redis at %s:%d", s->url.host, s->url.port);
    if (rk_thread_records_init(&s->conns, sizeof(rk_redis_conn_t), conn_record_drop) != RK_OK) {
        rk_redis_set_err(err, errlen, "redis: no thread-local key left");
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    rk_redis_gate_init(&s->gate);
    rk_redis_ignore_sigpipe();
    if (rk_redis_prober_start(&s->prober, &s->base, redis_probe, "redis", err, errlen) != RK_OK) {
        rk_thread_records_destroy(&s->conns);
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    return &s->base;
}

/* Connects this thread if needed and PINGs; on RK_ERR err says why. */
static rk_status_t ping_now(rk_redis_store_t *s, char *err, size_t errlen) {
    rk_redis_conn_t *c = thread_conn(s);
    if (!c) {
        rk_redis_set_err(err, errlen, "redis: out of memory");
        return RK_ERR;
    }
    if (!c->ctx && conn_open(s, &c->ctx, err, errlen) != RK_OK)
        return RK_ERR;
    redisReply *r = redisCommand(c->ctx, "PING");
    if (!r || r->type != REDIS_REPLY_STATUS) {
        char detail[256];
        rk_redis_describe_failure(c->ctx, r, "PING", detail, sizeof detail);
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", s->url.host, s->url.port, detail);
        if (r)
            rk_reply_free(r);
        conn_drop(c);
        return RK_ERR;
    }
    rk_reply_free(r);
    return RK_OK;
}

/*
 * PINGs whatever the breaker says: for start-up, where the caller decides
 * what an unreachable Redis means. The outcome counts as a call, so that a
 * store whose first connection failed starts unhealthy (/readyz 503) and
 * its prober takes over, rather than passing for healthy until a check
 * fails.
 */
rk_status_t rk_redis_store_ping(rk_store_t *base, char *err, size_t errlen) {
    rk_redis_store_t *s = (rk_redis_store_t *)base;
    rk_breaker_ticket_t ticket;
    bool admitted = rk_redis_gate_enter(&s->gate, &ticket); /* if not, it says unhealthy */
    rk_status_t st = ping_now(s, err, errlen);
    if (admitted)
        rk_redis_gate_leave(&s->gate, ticket, st == RK_OK, s->who);
    return st;
}
