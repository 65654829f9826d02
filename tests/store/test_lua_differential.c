/*
 * test_lua_differential.c — the Lua scripts of lua/ against the C algorithms
 * of server/src/limiter/, on a real redis-server: for every algorithm,
 * thousands of random steps (a few keys, a clock moving forward by random
 * amounts with occasional backward jumps, random costs including 0 and
 * above the limit, random limits, windows and bursts up to the bounds of
 * limiter.h, refunds of earlier allowed requests, some after later ones)
 * must give identical decisions, and every key the script writes must
 * carry a TTL no longer than the C state must live. Every other run goes
 * through the batch script ratekitd calls (redis_common.h), which must
 * decide as the algorithm's own script does.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limiter/limiter.h"
#include "redis_server.h"
#include "store/redis_common.h"

extern const char *const rk_lua_scripts[];
extern const size_t rk_lua_scripts_len;

#define KEYS_PER_RUN 3
/* Real time that may pass between a script's PEXPIRE and our PTTL. */
#define TTL_SLACK_MS 2000
/* A state needed for less than this may have expired by the time PTTL reads it. */
#define EXPIRY_RACE_MS 100

/* The state of one key on the C side. */
typedef struct {
    rk_cell_t cell;
    rk_log_t log;
    rk_lease_set_t leases;
} c_state_t;

static rk_test_redis_t redis;
static redisContext *conn;
static c_state_t state[KEYS_PER_RUN];

/* What the random steps covered, so that a weak mix cannot pass unnoticed. */
static struct {
    int allowed, denied, denied_retryable, peeks, delayed, refunds;
    int int_states, text_states; /* encodings of the fixed-size states written */
} seen;

static void forget_state(int k) {
    rk_log_free(&state[k].log);
    rk_lease_set_free(&state[k].leases);
    memset(&state[k], 0, sizeof state[k]);
}

static void free_states(void) {
    for (int k = 0; k < KEYS_PER_RUN; k++)
        forget_state(k);
}

static void start_redis(void) {
    rk_test_redis_start(&redis, NULL);
    struct timeval tv = {2, 0};
    conn = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    if (!conn || conn->err)
        cr_fatal("cannot connect to redis-server on port %d", redis.port);
}

static void stop_redis(void) {
    free_states();
    if (conn)
        redisFree(conn);
    conn = NULL;
    rk_test_redis_stop(&redis);
}

TestSuite(lua_differential, .init = start_redis, .fini = stop_redis, .timeout = 240);

/* ---- helpers ---- */

static redisReply *command(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(conn, fmt, ap);
    va_end(ap);
    if (!r)
        cr_fatal("redis: %s", conn->errstr);
    return r;
}

static long long command_int(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(conn, fmt, ap);
    va_end(ap);
    if (!r)
        cr_fatal("redis: %s", conn->errstr);
    if (r->type != REDIS_REPLY_INTEGER)
        cr_fatal("redis: expected an integer, got type %d (%s)", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* SCRIPT LOAD of a script's source, named name in a failure; sha has 41 bytes. */
static void script_load(const char *src, size_t len, const char *name, char sha[41]) {
    redisReply *r = command("SCRIPT LOAD %b", src, len);
    if (r->type != REDIS_REPLY_STRING)
        cr_fatal("SCRIPT LOAD %s: %s", name, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    snprintf(sha, 41, "%s", r->str);
    freeReplyObject(r);
}

/* SCRIPT LOAD of the embedded script of alg. */
static void load_script(rk_algorithm_t alg, char sha[41]) {
    cr_assert_eq(rk_lua_scripts_len, (size_t)RK_ALG_COUNT);
    script_load(rk_lua_scripts[alg], strlen(rk_lua_scripts[alg]), rk_algorithm_name(alg), sha);
}

/* SCRIPT LOAD of the batch script ratekitd builds from the embedded scripts. */
static void load_batch_script(char sha[41]) {
    rk_redis_common_t c;
    char err[256] = "";
    cr_assert_eq(rk_redis_common_init(&c, "test", NULL, true, NULL, 0, 0, err, sizeof err), RK_OK,
                 "%s", err);
    script_load(c.script[RK_REDIS_BATCH], c.script_len[RK_REDIS_BATCH], "batch", sha);
    cr_assert_str_eq(sha, c.sha[RK_REDIS_BATCH], "the batch script's SHA as Redis names it");
    rk_redis_common_free(&c);
}

typedef struct {
    const char *op; /* "decide", "decide_at", "release" or "refund" */
    int64_t cost;
    int64_t now_ms;
    const char *lease_id;
} step_t;

/* When set, run_script() calls the batch script (its SHA) for a batch of one request. */
static const char *via_batch;

/*
 * Runs one step of the script and reads the key's PTTL, then removes the
 * key's TTL, all in one MULTI/EXEC: redis-server does not expire keys
 * inside a transaction, so its real clock can never expire a key under the
 * fake clock of the test (the scripts must be right about what they would
 * find after an expiry anyway: an expired key is a fresh state). Fills d
 * (decide) or *released (release), and *pttl (-1: no TTL, -2: no key).
 */
static void run_script(const char *sha, const char *key, const rk_limit_t *lim, const step_t *s,
                       rk_decision_t *d, bool *released, long long *pttl) {
    char limit[24], window[24], burst[24], cost[24], now[24];
    snprintf(limit, sizeof limit, "%" PRId64, lim->limit);
    snprintf(window, sizeof window, "%" PRId64, lim->window_ms);
    snprintf(burst, sizeof burst, "%" PRId64, lim->burst);
    snprintf(cost, sizeof cost, "%" PRId64, s->cost);
    snprintf(now, sizeof now, "%" PRId64, s->now_ms);
    const char *args[] = {
        limit, window, burst, cost, now, lim->shape ? "1" : "0", s->lease_id ? s->lease_id : "",
        s->op};
    /* EVALSHA sha 1 key [1 algorithm] args: the batch script takes its number
     * of argument sets (one), then the set, algorithm first. */
    const char alg[2] = {(char)('0' + (int)lim->algorithm), '\0'};
    const char *argv[6 + RK_ARRAY_LEN(args)] = {
        "EVALSHA", via_batch ? via_batch : sha, "1", key, "1", alg};
    int argc = via_batch ? 6 : 4;
    for (size_t i = 0; i < RK_ARRAY_LEN(args); i++)
        argv[argc++] = args[i];
    redisAppendCommand(conn, "MULTI");
    redisAppendCommandArgv(conn, argc, argv, NULL);
    redisAppendCommand(conn, "PTTL %s", key);
    redisAppendCommand(conn, "PERSIST %s", key);
    redisAppendCommand(conn, "EXEC");
    redisReply *r = NULL;
    for (int i = 0; i < 5; i++) {
        if (r)
            freeReplyObject(r);
        if (redisGetReply(conn, (void **)&r) != REDIS_OK || !r)
            cr_fatal("redis: %s", conn->errstr);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        cr_fatal("EXEC %s: not an array of 3", key);
    redisReply *e = r->element[0];
    if (via_batch && e->type == REDIS_REPLY_ARRAY) { /* the batch's reply: one per request */
        cr_assert_eq(e->elements, 1);
        e = e->element[0];
    }
    if (e->type != REDIS_REPLY_ARRAY)
        cr_fatal("EVALSHA %s: %s", key, e->type == REDIS_REPLY_ERROR ? e->str : "not an array");
    for (size_t i = 0; i < e->elements; i++)
        if (e->element[i]->type != REDIS_REPLY_INTEGER)
            cr_fatal("EVALSHA %s: element %zu is not an integer", key, i);
    if (strcmp(s->op, "release") == 0 ||
        (strcmp(s->op, "refund") == 0 && lim->algorithm == RK_ALG_CONCURRENCY)) {
        cr_assert_eq(e->elements, 1);
        *released = e->element[0]->integer == 1;
    } else if (strcmp(s->op, "refund") == 0) {
        cr_assert_eq(e->elements, 6);
        cr_assert_eq(e->element[0]->integer, 1);
    } else { /* decide_at answers the time it decided at too, decide does not */
        bool at = strcmp(s->op, "decide_at") == 0;
        cr_assert_eq(e->elements, at ? 6u : 5u);
        memset(d, 0, sizeof *d);
        d->allowed = e->element[0]->integer == 1;
        d->limit = lim->limit;
        d->remaining = e->element[1]->integer;
        d->reset_ms = e->element[2]->integer;
        d->retry_after_ms = e->element[3]->integer;
        d->delay_ms = e->element[4]->integer;
        d->at_ms = at ? e->element[5]->integer : -1;
    }
    *pttl = r->element[1]->integer;
    freeReplyObject(r);
}

/* xorshift64*: deterministic, so a failure can be replayed from its seed. */
static uint64_t rng_state;

static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Uniform in [lo, hi]. */
static int64_t rnd_range(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static bool chance(int percent) {
    return (int)(rnd() % 100) < percent;
}

/* A limit, window and burst drawn from small, ordinary and extreme values. */
static rk_limit_t random_limit(rk_algorithm_t alg, int64_t limit_max) {
    rk_limit_t lim = {.algorithm = alg};
    switch (rnd() % 6) {
    case 0:
    case 1:
    case 2:
        lim.limit = rnd_range(1, 5);
        break;
    case 3:
        lim.limit = rnd_range(1, 100);
        break;
    case 4:
        lim.limit = rnd_range(1, limit_max < 10000 ? limit_max : 10000);
        break;
    default:
        lim.limit = chance(50) ? limit_max : rnd_range(1, limit_max);
        break;
    }
    switch (rnd() % 5) {
    case 0:
        lim.window_ms = rnd_range(1, 10);
        break;
    case 1:
        lim.window_ms = 1000;
        break;
    case 2:
        lim.window_ms = rnd_range(1, 100000);
        break;
    case 3:
        lim.window_ms = RK_WINDOW_MS_MAX;
        break;
    default:
        lim.window_ms = rnd_range(1, RK_WINDOW_MS_MAX);
        break;
    }
    switch (rnd() % 4) {
    case 0:
        lim.burst = lim.limit;
        break;
    case 1:
        lim.burst = rnd_range(1, 10);
        break;
    case 2:
        lim.burst = RK_BURST_MAX;
        break;
    default:
        lim.burst = rnd_range(1, lim.limit * 3 < RK_BURST_MAX ? lim.limit * 3 : RK_BURST_MAX);
        break;
    }
    lim.shape = chance(50);
    return lim;
}

/* The next clock reading: mostly forward by amounts around the window. */
static int64_t next_now(int64_t now, const rk_limit_t *lim) {
    int64_t w = lim->window_ms;
    int r = (int)(rnd() % 100);
    if (r < 20)
        return now;
    if (r < 50)
        return now + rnd_range(1, w / 8 + 1);
    if (r < 75)
        return now + rnd_range(1, w + 1);
    if (r < 88)
        return now + rnd_range(1, 3 * w);
    if (r < 93)
        return now + rnd_range(1, 1000000000000LL);
    return now - rnd_range(1, w + 1); /* the clock runs backwards */
}

/* A cost: often 1, sometimes 0 (peek), sometimes beyond the limit. */
static int64_t random_cost(const rk_limit_t *lim, int64_t cap) {
    int r = (int)(rnd() % 100);
    if (r < 10)
        return 0;
    if (r < 55)
        return 1;
    if (r < 85)
        return rnd_range(1, cap < 50 ? cap : (chance(20) ? cap : 50));
    if (r < 95)
        return cap + rnd_range(1, 3);
    (void)lim;
    return rnd_range(1, RK_COST_MAX);
}

static void assert_same(const rk_decision_t *c, const rk_decision_t *lua, const rk_limit_t *lim,
                        const step_t *s, const char *key, int step, uint64_t seed) {
    bool same = c->allowed == lua->allowed && c->remaining == lua->remaining &&
                c->reset_ms == lua->reset_ms && c->retry_after_ms == lua->retry_after_ms &&
                c->delay_ms == lua->delay_ms && c->at_ms == lua->at_ms;
    cr_assert(same,
              "%s seed %" PRIu64 " step %d key %s: limit %" PRId64 " window %" PRId64
              " burst %" PRId64 " shape %d, cost %" PRId64 " now %" PRId64 " %s\n"
              "  C:   allowed %d remaining %" PRId64 " reset %" PRId64 " retry %" PRId64
              " delay %" PRId64 " at %" PRId64 "\n"
              "  Lua: allowed %d remaining %" PRId64 " reset %" PRId64 " retry %" PRId64
              " delay %" PRId64 " at %" PRId64,
              rk_algorithm_name(lim->algorithm), seed, step, key, lim->limit, lim->window_ms,
              lim->burst, lim->shape, s->cost, s->now_ms, s->lease_id ? s->lease_id : "",
              c->allowed, c->remaining, c->reset_ms, c->retry_after_ms, c->delay_ms, c->at_ms,
              lua->allowed, lua->remaining, lua->reset_ms, lua->retry_after_ms, lua->delay_ms,
              lua->at_ms);
}

/*
 * Checks the TTL a step left on its key. When the step wrote, the key must
 * expire after at most ttl_ms (what the C state must live) and not much
 * sooner (only the real time since the script may have passed). A step that
 * did not write must not have set any expiry.
 */
static void check_ttl(const char *key, long long pttl, bool wrote, int64_t ttl_ms, const char *alg,
                      int step) {
    if (!wrote) {
        cr_assert(pttl < 0, "%s step %d: %s got a TTL (%lld ms) though nothing was written", alg,
                  step, key, pttl);
        return;
    }
    if (pttl == -2 && ttl_ms < EXPIRY_RACE_MS)
        return;
    cr_assert(pttl >= 0, "%s step %d: %s written without a TTL (PTTL %lld)", alg, step, key, pttl);
    cr_assert(pttl <= ttl_ms, "%s step %d: %s lives %lld ms, the state only needs %" PRId64, alg,
              step, key, pttl, ttl_ms);
    cr_assert(pttl > ttl_ms - TTL_SLACK_MS,
              "%s step %d: %s lives %lld ms, the state needs %" PRId64, alg, step, key, pttl,
              ttl_ms);
}

/* An LCG apart from rnd(), for the refunds: true one time in four. */
static bool one_in_four(uint64_t *x) {
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 62 == 0;
}

/* The latest allowed request of a key, which a refund may give back. */
typedef struct {
    bool set;
    int64_t at_ms, cost;
    char lease_id[16];
} refundable_t;

/*
 * A refund of the key's latest allowed request (at its decision's at_ms,
 * perhaps after later requests moved the state on), C and Lua side by side;
 * a key the script deleted must be one the C side holds nothing in.
 */
static void refund_step(rk_algorithm_t alg, const char *sha, const char *key, const rk_limit_t *lim,
                        c_state_t *st, refundable_t *r, int step, uint64_t seed) {
    step_t s = {.op = "refund",
                .now_ms = r->at_ms,
                .cost = r->cost,
                .lease_id = alg == RK_ALG_CONCURRENCY ? r->lease_id : NULL};
    bool c_released = false, lua_released = false;
    if (alg == RK_ALG_CONCURRENCY)
        c_released = rk_lease_release(&st->leases, r->at_ms, r->lease_id, r->cost);
    else if (alg == RK_ALG_SLIDING_LOG)
        rk_log_refund(&st->log, r->at_ms, r->cost);
    else
        rk_cell_refund(lim, &st->cell, r->at_ms, r->cost);
    rk_decision_t unused;
    long long pttl;
    run_script(sha, key, lim, &s, &unused, &lua_released, &pttl);
    cr_assert_eq(c_released, lua_released, "%s seed %" PRIu64 " step %d: refund's release",
                 rk_algorithm_name(alg), seed, step);
    int64_t ttl = alg == RK_ALG_CONCURRENCY   ? rk_lease_ttl_ms(&st->leases, r->at_ms)
                  : alg == RK_ALG_SLIDING_LOG ? rk_log_ttl_ms(lim, &st->log, r->at_ms)
                                              : rk_cell_ttl_ms(lim, &st->cell, r->at_ms);
    if (pttl == -2)
        cr_assert(ttl == 0 || (alg == RK_ALG_CONCURRENCY && ttl < EXPIRY_RACE_MS),
                  "%s seed %" PRIu64 " step %d: the refund deleted %s, the C state lives %" PRId64
                  " ms",
                  rk_algorithm_name(alg), seed, step, key, ttl);
    if (pttl == -2)
        forget_state((int)(st - state)); /* as Redis did */
    r->set = false;
    seen.refunds++;
}

/*
 * One run: `steps` random steps over KEYS_PER_RUN keys with one random limit,
 * C and Lua side by side.
 */
static void differential_run(rk_algorithm_t alg, const char *sha, uint64_t seed, int steps,
                             int64_t limit_max) {
    rng_state = seed;
    const char *alg_name = rk_algorithm_name(alg);
    rk_limit_t lim = random_limit(alg, limit_max);
    free_states();
    char keys[KEYS_PER_RUN][96];
    for (int k = 0; k < KEYS_PER_RUN; k++) {
        snprintf(keys[k], sizeof keys[k], "ratekit:{r%" PRIu64 ":client-%d}:%s", seed, k, alg_name);
        command_int("DEL %s", keys[k]);
    }
    int64_t now = chance(10) ? RK_NOW_MS_MAX - rnd_range(0, 1000000) : rnd_range(0, 2000000000000);
    int64_t cap = lim.limit;
    if (alg == RK_ALG_TOKEN_BUCKET || alg == RK_ALG_GCRA || alg == RK_ALG_LEAKY_BUCKET)
        cap = lim.burst;
    char lease_ids[64][16]; /* the latest ids acquired: releases pick one of them */
    int64_t lease_units[64];
    int issued = 0;
    refundable_t refundable[KEYS_PER_RUN] = {0};
    /* Refunds in every other run, drawn from an rng of their own: the other
     * runs step exactly as they would without them. */
    bool refunds = seed % 2 == 0;
    uint64_t refund_rng = seed | 1;

    for (int i = 0; i < steps; i++) {
        int k = (int)(rnd() % KEYS_PER_RUN);
        now = next_now(now, &lim);
        if (now < 0)
            now = 0;
        if (alg == RK_ALG_CONCURRENCY &&
            chance(3)) /* the rule's window changed: leases keep theirs */
            lim.window_ms = random_limit(alg, limit_max).window_ms;
        if (refunds && refundable[k].set && one_in_four(&refund_rng)) {
            refund_step(alg, sha, keys[k], &lim, &state[k], &refundable[k], i, seed);
            i--; /* beside the run's `steps` decisions (it clears refundable[k]) */
            continue;
        }
        step_t s = {.op = "decide_at", .now_ms = now, .cost = random_cost(&lim, cap)};
        if (alg == RK_ALG_SLIDING_LOG && s.cost > 2000 && s.cost <= lim.limit)
            s.cost = 2000; /* keeps the run fast; costs above the limit stay */
        rk_decision_t c, lua;
        bool wrote = false;
        int64_t ttl = 0;
        if (alg == RK_ALG_CONCURRENCY) {
            if (issued > 0 && chance(25)) {
                /* Mostly a lease acquired on this key or another, sometimes none left. */
                size_t pick = rnd() % (uint64_t)(issued < 64 ? issued : 64);
                s.lease_id = lease_ids[pick];
                s.op = "release";
                /* Mostly the units it was acquired with (found by its member),
                 * sometimes none (searched for), sometimes others (not found). */
                s.cost = chance(60) ? lease_units[pick] : chance(50) ? 0 : s.cost;
                bool c_released = rk_lease_release(&state[k].leases, now, s.lease_id, s.cost);
                bool lua_released = false;
                long long pttl;
                run_script(sha, keys[k], &lim, &s, NULL, &lua_released, &pttl);
                cr_assert_eq(c_released, lua_released, "%s seed %" PRIu64 " step %d: release",
                             alg_name, seed, i);
                int64_t ttl_after = rk_lease_ttl_ms(&state[k].leases, now);
                if (pttl >= 0)
                    check_ttl(keys[k], pttl, true, ttl_after, alg_name, i);
                else if (pttl == -2)
                    cr_assert(ttl_after < EXPIRY_RACE_MS,
                              "%s step %d: key deleted while leases live %" PRId64 " ms", alg_name,
                              i, ttl_after);
                if (pttl == -2)
                    forget_state(k); /* as Redis did */
                continue;
            }
            s.lease_id = lease_ids[issued % 64]; /* a fresh id, as ratekitd draws */
            snprintf(lease_ids[issued % 64], sizeof lease_ids[0], "l%d", i);
            lease_units[issued % 64] = s.cost;
            issued++;
            cr_assert_eq(rk_lease_acquire(&lim, &state[k].leases, now, s.cost, s.lease_id, &c),
                         RK_OK);
            wrote = c.allowed && s.cost > 0;
            ttl = rk_lease_ttl_ms(&state[k].leases, now);
        } else if (alg == RK_ALG_SLIDING_LOG) {
            cr_assert_eq(rk_log_decide(&lim, &state[k].log, now, s.cost, &c), RK_OK);
            wrote = c.allowed && s.cost > 0;
            ttl = rk_log_ttl_ms(&lim, &state[k].log, now);
        } else {
            rk_cell_decide(&lim, &state[k].cell, now, s.cost, &c);
            wrote = c.allowed && s.cost > 0;
            ttl = rk_cell_ttl_ms(&lim, &state[k].cell, now);
        }
        long long pttl;
        run_script(sha, keys[k], &lim, &s, &lua, NULL, &pttl);
        assert_same(&c, &lua, &lim, &s, keys[k], i, seed);
        if (wrote) {
            refundable[k] = (refundable_t){.set = true, .at_ms = c.at_ms, .cost = s.cost};
            if (s.lease_id)
                snprintf(refundable[k].lease_id, sizeof refundable[k].lease_id, "%s", s.lease_id);
        }
        seen.allowed += c.allowed;
        seen.denied += !c.allowed;
        seen.denied_retryable += !c.allowed && s.cost <= cap;
        seen.peeks += s.cost == 0;
        seen.delayed += c.delay_ms > 0;
        check_ttl(keys[k], pttl, wrote, ttl, alg_name, i);
        /* A short state may be gone already: PEXPIRE deletes a key whose
         * expiry has passed by the time it checks (a TTL of 1 ms and a pause
         * of one in between). check_ttl allows that; the C side forgets the
         * state too, as Redis did, or the next steps would compare a state
         * with none. */
        if (wrote && pttl == -2) {
            forget_state(k);
            refundable[k].set = false;
        }
        if (wrote &&
            (alg == RK_ALG_FIXED_WINDOW || alg == RK_ALG_TOKEN_BUCKET || alg == RK_ALG_GCRA)) {
            redisReply *enc = command("OBJECT ENCODING %s", keys[k]);
            bool is_int = enc->type == REDIS_REPLY_STRING && !strcmp(enc->str, "int");
            seen.int_states += is_int;
            seen.text_states += !is_int;
            freeReplyObject(enc);
        }
    }
    free_states();
}

/* Many runs with different limits, about `total_steps` steps in all. */
static void differential(rk_algorithm_t alg, int64_t limit_max, int total_steps) {
    char sha[41], batch_sha[41];
    load_script(alg, sha);
    load_batch_script(batch_sha);
    const char *seed_env = getenv("RK_DIFF_SEED");
    uint64_t base = seed_env ? strtoull(seed_env, NULL, 10) : 0x5eed0000ULL + (uint64_t)alg;
    int runs = 40;
    memset(&seen, 0, sizeof seen);
    for (int r = 0; r < runs; r++) {
        via_batch = r % 2 ? batch_sha : NULL;
        differential_run(alg, sha, base * 1000 + (uint64_t)r + 1, total_steps / runs, limit_max);
    }
    via_batch = NULL;
    cr_assert(seen.allowed > total_steps / 10 && seen.denied_retryable > total_steps / 25 &&
                  seen.peeks > total_steps / 50 && seen.refunds > total_steps / 50,
              "weak mix: %d allowed, %d denied (%d could pass later), %d peeks, %d refunds",
              seen.allowed, seen.denied, seen.denied_retryable, seen.peeks, seen.refunds);
    if (alg == RK_ALG_LEAKY_BUCKET)
        cr_assert(seen.delayed > total_steps / 20, "only %d delayed", seen.delayed);
    /* Both encodings of lua/README.md were written, and read back, in the run. */
    if (alg == RK_ALG_FIXED_WINDOW || alg == RK_ALG_TOKEN_BUCKET || alg == RK_ALG_GCRA)
        cr_assert(seen.int_states > total_steps / 50 && seen.text_states > total_steps / 50,
                  "%d integer states, %d text states", seen.int_states, seen.text_states);
    cr_log_info("%s: %d allowed, %d denied (%d could pass later), %d peeks, %d delayed",
                rk_algorithm_name(alg), seen.allowed, seen.denied, seen.denied_retryable,
                seen.peeks, seen.delayed);
}

/* ---- the suites ---- */

Test(lua_differential, fixed_window_script_decides_as_the_c_code) {
    differential(RK_ALG_FIXED_WINDOW, RK_LIMIT_MAX, 6000);
}

Test(lua_differential, sliding_window_script_decides_as_the_c_code) {
    differential(RK_ALG_SLIDING_WINDOW, RK_LIMIT_MAX, 6000);
}

Test(lua_differential, sliding_log_script_decides_as_the_c_code) {
    differential(RK_ALG_SLIDING_LOG, RK_SLIDING_LOG_LIMIT_MAX, 4000);
}

Test(lua_differential, token_bucket_script_decides_as_the_c_code) {
    differential(RK_ALG_TOKEN_BUCKET, RK_LIMIT_MAX, 6000);
}

Test(lua_differential, gcra_script_decides_as_the_c_code) {
    differential(RK_ALG_GCRA, RK_LIMIT_MAX, 6000);
}

Test(lua_differential, leaky_bucket_script_decides_as_the_c_code) {
    differential(RK_ALG_LEAKY_BUCKET, RK_LIMIT_MAX, 6000);
}

Test(lua_differential, concurrency_script_decides_as_the_c_code) {
    differential(RK_ALG_CONCURRENCY, RK_CONCURRENCY_LIMIT_MAX, 6000);
}

/* now_ms = -1: the script reads the clock of redis-server (TIME). */
Test(lua_differential, scripts_take_now_from_redis_time_when_now_is_minus_one) {
    char sha[41];
    load_script(RK_ALG_FIXED_WINDOW, sha);
    rk_limit_t lim = {
        .algorithm = RK_ALG_FIXED_WINDOW, .limit = 5, .window_ms = 3600000, .burst = 5};
    redisReply *t = command("TIME");
    int64_t before = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    step_t s = {.op = "decide", .cost = 2, .now_ms = -1};
    rk_decision_t lua;
    long long pttl;
    run_script(sha, "ratekit:{time:k}:fixed_window", &lim, &s, &lua, NULL, &pttl);
    rk_cell_t cell = {0};
    rk_decision_t c;
    rk_cell_decide(&lim, &cell, before, 2, &c);
    cr_assert(lua.allowed);
    cr_assert_eq(lua.remaining, 3);
    /* Same window end, up to the few ms between TIME and the script. */
    cr_assert(lua.reset_ms <= c.reset_ms && lua.reset_ms > c.reset_ms - 1000,
              "reset %" PRId64 " vs %" PRId64, lua.reset_ms, c.reset_ms);
}

Test(lua_differential, concurrency_script_refuses_an_acquire_without_lease_id) {
    char sha[41];
    load_script(RK_ALG_CONCURRENCY, sha);
    redisReply *r = command("EVALSHA %s 1 %s 3 1000 3 1 5000 0 %s decide", sha,
                            "ratekit:{c:k}:concurrency", "");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    cr_assert_eq(command_int("EXISTS %s", "ratekit:{c:k}:concurrency"), 0);
}

/*
 * One call of the batch script decides requests of several algorithms, each
 * as its own script would, and a request whose script fails (a key of
 * another type, an acquire without a lease id) gets an error in its place
 * while the others keep their decisions. Requests of the same arguments
 * share a set, sent once. Every request of the call without a time of its
 * own is decided at the same Redis time.
 */
Test(lua_differential, the_batch_script_decides_each_request_and_fails_only_its_own) {
    char sha[41];
    load_batch_script(sha);
    freeReplyObject(command("HSET %s a 1", "ratekit:{b:poisoned}:token_bucket"));
    redisReply *r =
        command("EVALSHA %s 6 %s %s %s %s %s %s 5"
                " 3 10 1000 10 1 -1 0 %s decide_at"
                " 0 5 60000 5 2 -1 0 %s decide"
                " 6 3 1000 3 1 -1 0 %s decide"
                " 4 10 1000 10 1 -1 0 %s decide_at"
                " 3 10 1000 10 4 -1 0 %s decide"
                " 1 1 2 3 4 5",
                sha, "ratekit:{b:k1}:token_bucket", "ratekit:{b:poisoned}:token_bucket",
                "ratekit:{b:k2}:fixed_window", "ratekit:{b:k3}:concurrency", "ratekit:{b:k4}:gcra",
                "ratekit:{b:k1}:token_bucket", "", "", "", "", "");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 6);
    redisReply *tb = r->element[0], *bad = r->element[1], *fw = r->element[2],
               *lease = r->element[3], *gcra = r->element[4], *tb4 = r->element[5];
    cr_assert_eq(tb->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(tb->elements, 6);
    cr_assert_eq(tb->element[0]->integer, 1);
    cr_assert_eq(tb->element[1]->integer, 9);
    cr_assert_eq(tb4->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(tb4->elements, 5, "set 5's op (decide) answers no time");
    cr_assert_eq(tb4->element[0]->integer, 1, "a cost of 4 of the 9 tokens left passes");
    cr_assert_eq(tb4->element[1]->integer, 5);
    cr_assert_eq(bad->type, REDIS_REPLY_ERROR);
    cr_assert(strstr(bad->str, "WRONGTYPE") != NULL, "%s", bad->str);
    cr_assert_eq(fw->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(fw->elements, 5);
    cr_assert_eq(fw->element[0]->integer, 1);
    cr_assert_eq(fw->element[1]->integer, 3);
    cr_assert_eq(lease->type, REDIS_REPLY_ERROR, "an acquire without a lease id is refused");
    cr_assert_eq(gcra->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(gcra->element[0]->integer, 1);
    cr_assert_eq(gcra->element[5]->integer, tb->element[5]->integer, "one Redis time per call");
    freeReplyObject(r);
    cr_assert_eq(command_int("EXISTS %s", "ratekit:{b:k3}:concurrency"), 0);
    cr_assert_eq(command_int("HLEN %s", "ratekit:{b:poisoned}:token_bucket"), 1);
    /* As many sets as requests: request i has set i, named by none (fresh
     * keys of an hour's window: nothing refills between the calls). */
    r = command("EVALSHA %s 2 %s %s 2"
                " 0 5 3600000 5 1 -1 0 %s decide"
                " 3 10 3600000 10 2 -1 0 %s decide",
                sha, "ratekit:{b:k6}:fixed_window", "ratekit:{b:k7}:token_bucket", "", "");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->element[1]->integer, 4, "fixed_window: 5 - 1");
    cr_assert_eq(r->element[1]->element[1]->integer, 8, "token_bucket: 10 - 2");
    freeReplyObject(r);
}

/*
 * The fixed-size states are integers, which redis-server keeps in its value
 * object with no string of their own: with a key name of the documented
 * layout ("ratekit:{api:u42}:gcra", 22 bytes) a key takes 72 bytes, all of
 * it the key's name and redis-server's own entry (a text value took 104).
 */
Test(lua_differential, fixed_size_states_are_integers) {
    const rk_algorithm_t algs[] = {RK_ALG_FIXED_WINDOW, RK_ALG_TOKEN_BUCKET, RK_ALG_GCRA};
    for (size_t i = 0; i < RK_ARRAY_LEN(algs); i++) {
        char sha[41], key[64];
        load_script(algs[i], sha);
        snprintf(key, sizeof key, "ratekit:{api:u42}:%s", rk_algorithm_name(algs[i]));
        rk_limit_t lim = {.algorithm = algs[i], .limit = 100, .window_ms = 60000, .burst = 100};
        step_t s = {.op = "decide", .cost = 1, .now_ms = 1795396020123};
        rk_decision_t d;
        long long pttl;
        run_script(sha, key, &lim, &s, &d, NULL, &pttl);
        cr_assert(d.allowed);
        redisReply *r = command("OBJECT ENCODING %s", key);
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        cr_assert_str_eq(r->str, "int", "%s is kept as %s", key, r->str);
        freeReplyObject(r);
        long long usage = command_int("MEMORY USAGE %s", key);
        cr_assert(usage <= 72, "%s takes %lld bytes", key, usage);
        /* and the next check reads it back */
        s.now_ms += 10;
        run_script(sha, key, &lim, &s, &d, NULL, &pttl);
        cr_assert(d.allowed);
        cr_assert_eq(d.remaining, 98);
    }
}

/* One sliding_log step on key, through run_script, and the same on the C log. */
static void log_step(const char *sha, const char *key, const rk_limit_t *lim, rk_log_t *log,
                     int64_t cost, int64_t now, long long *pttl) {
    step_t s = {.op = "decide_at", .cost = cost, .now_ms = now};
    rk_decision_t c, lua;
    cr_assert_eq(rk_log_decide(lim, log, now, cost, &c), RK_OK);
    run_script(sha, key, lim, &s, &lua, NULL, pttl);
    assert_same(&c, &lua, lim, &s, key, 0, 0);
}

Test(lua_differential, sliding_log_script_finds_the_expired_entries_as_the_c_code) {
    /* A log of 1,000 entries, 10 ms apart, then a check when exactly k of
     * them have expired: the script gallops from the oldest entry, so every
     * k near a power of two (and none, and all) is a case of its own. */
    char sha[41];
    load_script(RK_ALG_SLIDING_LOG, sha);
    const int64_t base = 1795396020000, window = 100000;
    rk_limit_t lim = {.algorithm = RK_ALG_SLIDING_LOG, .limit = 1000, .window_ms = window};
    const char *src = "ratekit:{log:src}:sliding_log", *key = "ratekit:{log:k}:sliding_log";
    command_int("DEL %s", src);
    rk_log_t built = {0};
    long long pttl;
    for (int i = 0; i < 1000; i++)
        log_step(sha, src, &lim, &built, 1, base + 10 * i, &pttl);
    rk_log_free(&built);

    static const int ks[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 511, 512, 513, 998, 999, 1000};
    for (size_t n = 0; n < RK_ARRAY_LEN(ks); n++) {
        int k = ks[n];
        rk_log_t log = {0};
        rk_decision_t d;
        for (int i = 0; i < 1000; i++)
            cr_assert_eq(rk_log_decide(&lim, &log, base + 10 * i, 1, &d), RK_OK);
        redisReply *r = command("COPY %s %s REPLACE", src, key);
        freeReplyObject(r);
        /* The k-th entry (index k - 1) is exactly as old as the window. */
        int64_t now = k == 0 ? base + window - 5 : base + 10 * (k - 1) + window;
        if (k < 1000)
            log_step(sha, key, &lim, &log, k + 1, now, &pttl); /* denied: one too many */
        log_step(sha, key, &lim, &log, k == 0 ? 0 : 1, now, &pttl);
        cr_assert_eq(command_int("LLEN %s", key), (long long)log.len, "k = %d", k);
        rk_log_free(&log);
    }
}

Test(lua_differential, sliding_log_script_reads_a_sorted_set_written_by_ratekit_0_1_0) {
    /* ratekit 0.1.0 kept a log as a sorted set (score = time, member
     * "<time>:<n>"): the script rewrites it as a list, keeps its TTL, and
     * decides as on the log it held. */
    char sha[41];
    load_script(RK_ALG_SLIDING_LOG, sha);
    const char *key = "ratekit:{log:old}:sliding_log";
    command_int("DEL %s", key);
    command_int("ZADD %s 1000 1000:0 1000 1000:1 1005 1005:0 2000 2000:0", key);
    command_int("PEXPIRE %s 9000", key);
    rk_limit_t lim = {.algorithm = RK_ALG_SLIDING_LOG, .limit = 5, .window_ms = 10000};
    rk_log_t log = {0};
    rk_decision_t d;
    cr_assert_eq(rk_log_decide(&lim, &log, 1000, 2, &d), RK_OK);
    cr_assert_eq(rk_log_decide(&lim, &log, 1005, 1, &d), RK_OK);
    cr_assert_eq(rk_log_decide(&lim, &log, 2000, 1, &d), RK_OK);

    long long pttl;
    log_step(sha, key, &lim, &log, 0, 3000, &pttl); /* a peek converts, writes nothing new */
    cr_assert(pttl > 8000 && pttl <= 9000, "the TTL was not kept: %lld ms", pttl);
    redisReply *r = command("TYPE %s", key);
    cr_assert_str_eq(r->str, "list");
    freeReplyObject(r);
    log_step(sha, key, &lim, &log, 2, 3000, &pttl); /* denied until 1000 + 10000 */
    log_step(sha, key, &lim, &log, 1, 3000, &pttl);
    log_step(sha, key, &lim, &log, 1, 11000, &pttl); /* the two of 1000 expired */
    cr_assert_eq(command_int("LLEN %s", key), 4);
    rk_log_free(&log);
}

Test(lua_differential, sliding_log_entries_take_about_ten_bytes_each_in_redis) {
    /* A list of small integers: 10,000 entries in 107 KB, where the sorted
     * set of ratekit 0.1.0 took 1.3 MB. */
    char sha[41];
    load_script(RK_ALG_SLIDING_LOG, sha);
    const char *key = "ratekit:{log:big}:sliding_log";
    command_int("DEL %s", key);
    rk_limit_t lim = {.algorithm = RK_ALG_SLIDING_LOG, .limit = 100000, .window_ms = 3600000};
    rk_log_t log = {0};
    long long pttl;
    for (int i = 0; i < 10; i++)
        log_step(sha, key, &lim, &log, 1000, 1795396020000 + 7 * i, &pttl);
    cr_assert_eq(command_int("LLEN %s", key), 10000);
    long long usage = command_int("MEMORY USAGE %s SAMPLES 0", key);
    cr_assert(usage < 16 * 10000, "10,000 entries take %lld bytes", usage);
    rk_log_free(&log);
}

/* One concurrency step on key at now, through run_script. */
static rk_decision_t lease_step(const char *sha, const char *key, int64_t limit, const char *op,
                                int64_t cost, int64_t now, const char *id, bool *released) {
    rk_limit_t lim = {.algorithm = RK_ALG_CONCURRENCY, .limit = limit, .window_ms = 1000};
    step_t s = {.op = op, .cost = cost, .now_ms = now, .lease_id = id};
    rk_decision_t d = {0};
    long long pttl;
    run_script(sha, key, &lim, &s, &d, released, &pttl);
    return d;
}

Test(lua_differential, concurrency_script_sums_a_set_written_without_its_count) {
    /* A set as an older ratekit wrote it: the leases, no "#" member. */
    char sha[41];
    load_script(RK_ALG_CONCURRENCY, sha);
    const char *key = "ratekit:{c:old}:concurrency";
    command_int("DEL %s", key);
    command_int("ZADD %s 900 %s 1500 %s 1600 %s", key, "gone:5", "a:2", "b:1");
    cr_assert_not(lease_step(sha, key, 4, "decide", 2, 1000, "c", NULL).allowed,
                  "a and b hold 3 of 4 units");
    rk_decision_t d = lease_step(sha, key, 4, "decide", 1, 1000, "c", NULL);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    bool released = false;
    lease_step(sha, key, 4, "release", 0, 1000, "a", &released);
    cr_assert(released);
    cr_assert_eq(lease_step(sha, key, 4, "decide", 0, 1000, NULL, NULL).remaining, 2);
}

Test(lua_differential, concurrency_release_with_units_reads_one_member_of_a_large_set) {
    /* 3,000 live leases: a release that names its lease's units finds it
     * by its member, without walking the set (no ZSCAN); one that does not
     * still finds it. */
    char sha[41];
    load_script(RK_ALG_CONCURRENCY, sha);
    const char *key = "ratekit:{c:big}:concurrency";
    command_int("DEL %s", key);
    char id[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "l%d", i);
        cr_assert(lease_step(sha, key, 10000, "decide", 1 + i % 3, 1000, id, NULL).allowed);
    }
    redisReply *r = redisCommand(conn, "CONFIG RESETSTAT");
    freeReplyObject(r);
    bool released = true;
    lease_step(sha, key, 10000, "release", 1, 1001, "l1234", &released);
    cr_assert_not(released, "l1234 holds 2 units, not 1");
    lease_step(sha, key, 10000, "release", 2, 1001, "l1234", &released);
    cr_assert(released);
    r = redisCommand(conn, "INFO commandstats");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    cr_assert_null(strstr(r->str, "cmdstat_zscan:"), "a release with units scanned the set");
    freeReplyObject(r);
    lease_step(sha, key, 10000, "release", 0, 1001, "l1236", &released);
    cr_assert(released, "found by its id alone");
    cr_assert_eq(lease_step(sha, key, 10000, "decide", 0, 1001, NULL, NULL).remaining,
                 10000 - (6000 - 2 - 1));
}

Test(lua_differential, concurrency_release_takes_the_id_literally) {
    /* The release finds its lease with ZSCAN MATCH: glob characters in an id
     * must not match another lease. */
    char sha[41];
    load_script(RK_ALG_CONCURRENCY, sha);
    const char *key = "ratekit:{c:glob}:concurrency";
    command_int("DEL %s", key);
    cr_assert(lease_step(sha, key, 5, "decide", 1, 1000, "ab", NULL).allowed);
    bool released = true;
    static const char *const patterns[] = {"a*", "a?", "[a]b", "*", "a\\b"};
    for (size_t i = 0; i < RK_ARRAY_LEN(patterns); i++) {
        lease_step(sha, key, 5, "release", 0, 1001, patterns[i], &released);
        cr_assert_not(released, "release of \"%s\" ended lease \"ab\"", patterns[i]);
    }
    cr_assert_eq(lease_step(sha, key, 5, "decide", 0, 1001, NULL, NULL).remaining, 4);
    lease_step(sha, key, 5, "release", 0, 1001, "ab", &released);
    cr_assert(released);
    cr_assert_eq(command_int("EXISTS %s", key), 0, "the last lease took the key with it");
}
