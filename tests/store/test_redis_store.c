/*
 * test_redis_store.c — the Redis store against a real redis-server: one
 * limit shared by several store instances, the key layout, credentials and
 * database from the URL, recovery from SCRIPT FLUSH, a killed and a hung
 * Redis, and pipelined batches.
 *
 * Tests about the store's plumbing use a small fixed-window script of their
 * own (TEST_SCRIPT), so that they do not depend on the algorithms; the
 * per-algorithm tests use the scripts embedded from lua/.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_server.h"
#include "store/store.h"

extern const char *const rk_lua_scripts[];
extern const size_t rk_lua_scripts_len;

/*
 * A counter per key, no time involved: exactly ARGV[1] units pass, then
 * every call is denied with retry_after_ms = window. The key expires after
 * the window. Release deletes the key.
 */
static const char TEST_SCRIPT[] =
    "local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])\n"
    "if ARGV[8] == 'release' then return {redis.call('DEL', KEYS[1])} end\n"
    "local n = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if n + cost > limit then return {0, limit - n, window, window, 0} end\n"
    "n = redis.call('INCRBY', KEYS[1], cost)\n"
    "redis.call('PEXPIRE', KEYS[1], window)\n"
    "return {1, limit - n, window, 0, 0}\n";

static const char *const test_scripts[RK_ALG_COUNT] = {
    TEST_SCRIPT, TEST_SCRIPT, TEST_SCRIPT, TEST_SCRIPT, TEST_SCRIPT, TEST_SCRIPT, TEST_SCRIPT};

#define COMMAND_TIMEOUT_MS 250
#define SLACK_MS 150

/* ---- helpers -------------------------------------------------------- */

/* The test's redis-server; stopped by the suite's fini even after a failure. */
static rk_test_redis_t srv;

static void stop_srv(void) {
    rk_test_redis_stop(&srv);
}

TestSuite(redis_store, .fini = stop_srv);

static rk_store_t *open_store(const char *url, const char *const *scripts) {
    rk_redis_config_t cfg = {.url = url, .scripts = scripts};
    char err[256] = "";
    rk_store_t *s = rk_redis_store_new(&cfg, err, sizeof err);
    if (!s)
        cr_fatal("store refused %s: %s", url, err);
    return s;
}

static rk_store_t *open_local(const rk_test_redis_t *r, const char *const *scripts) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", r->port);
    return open_store(url, scripts);
}

static rk_store_req_t fixed_req(const char *rule, const char *key, int64_t limit) {
    rk_store_req_t q = {
        .rule_id = rule,
        .key = key,
        .limit = {.algorithm = RK_ALG_FIXED_WINDOW,
                  .limit = limit,
                  .window_ms = 60000,
                  .burst = limit,
                  .shape = false},
        .cost = 1,
        .now_ms = -1,
    };
    return q;
}

/* A direct connection for inspecting what the store wrote. */
static redisContext *inspect(const rk_test_redis_t *r) {
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err)
        cr_fatal("cannot connect to redis on %d", r->port);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!rep)
        cr_fatal("redis command failed: %s", c->errstr);
    return rep;
}

static long long cmd_int(redisContext *c, const char *fmt, const char *arg) {
    redisReply *rep = cmd(c, fmt, arg);
    cr_assert_eq(rep->type, REDIS_REPLY_INTEGER, "%s: reply type %d", fmt, rep->type);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* SIGKILLs the server but keeps its port and directory for restart_redis(). */
static void kill_redis(rk_test_redis_t *r) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* Starts redis-server again on the same port; waits until it answers. */
static void restart_redis(rk_test_redis_t *r) {
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", r->dir, "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", r->port);
        bool up = c && !c->err;
        if (c)
            redisFree(c);
        if (up)
            return;
        usleep(10000);
    }
    cr_fatal("redis-server did not come back on port %d", r->port);
}

/* ---- plumbing, with TEST_SCRIPT --------------------------------------- */

Test(redis_store, refuses_a_bad_url_or_prefix_with_a_reason) {
    char err[256] = "";
    rk_redis_config_t cfg = {.url = "redis://localhost:notaport"};
    cr_assert_null(rk_redis_store_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "port") != NULL, "message: %s", err);
    cfg = (rk_redis_config_t){.url = "redis://localhost:6379", .key_prefix = "a{b}"};
    cr_assert_null(rk_redis_store_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "prefix") != NULL, "message: %s", err);
}

Test(redis_store, key_uses_documented_layout_and_has_ttl) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("api-per-ip", "203.0.113.7", 5);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert(d.allowed);

    redisContext *c = inspect(&srv);
    redisReply *keys = cmd(c, "KEYS *");
    cr_assert_eq(keys->elements, 1);
    cr_assert_str_eq(keys->element[0]->str, "ratekit:{api-per-ip:203.0.113.7}:fixed_window");
    freeReplyObject(keys);
    long long ttl = cmd_int(c, "PTTL %s", "ratekit:{api-per-ip:203.0.113.7}:fixed_window");
    cr_assert(ttl > 0 && ttl <= 60000, "PTTL %lld", ttl);

    /* reset forgets it; key_count sees the database */
    cr_assert_eq(s->ops->key_count(s), 1);
    cr_assert_eq(s->ops->reset(s, "api-per-ip", "203.0.113.7", RK_ALG_FIXED_WINDOW), RK_OK);
    cr_assert_eq(s->ops->key_count(s), 0);
    cr_assert(s->ops->healthy(s));
    redisFree(c);
    s->ops->destroy(s);
}

Test(redis_store, key_prefix_and_unusual_key_bytes_reach_redis_verbatim) {
    rk_test_redis_start(&srv, NULL);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    rk_redis_config_t cfg = {.url = url, .key_prefix = "tenant-a.rl", .scripts = test_scripts};
    rk_store_t *s = rk_redis_store_new(&cfg, NULL, 0);
    cr_assert_not_null(s);
    const char *key = "user:%s %n \"quoted\"\\*?";
    rk_store_req_t q = fixed_req("r1", key, 5);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);

    redisContext *c = inspect(&srv);
    char expect[256];
    snprintf(expect, sizeof expect, "tenant-a.rl:{r1:%s}:fixed_window", key);
    cr_assert_eq(cmd_int(c, "EXISTS %s", expect), 1, "no key %s", expect);
    redisFree(c);
    s->ops->destroy(s);
}

Test(redis_store, password_acl_user_and_db_come_from_the_url) {
    const char *args[] = {"--requirepass", "s3cret", "--user", "limiter", "on",
                          ">l1m1t",        "~*",     "+@all",  NULL};
    rk_test_redis_start(&srv, args);
    char url[128];
    char err[256] = "";

    /* the default user with the password alone, database 5 */
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d/5", srv.port);
    rk_store_t *s = open_store(url, test_scripts);
    cr_assert_eq(rk_redis_store_ping(s, err, sizeof err), RK_OK, "%s", err);
    rk_store_req_t q = fixed_req("r", "k", 3);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert_eq(s->ops->key_count(s), 1);
    s->ops->destroy(s);

    /* an ACL user, database 6 */
    snprintf(url, sizeof url, "redis://limiter:l1m1t@127.0.0.1:%d/6", srv.port);
    s = open_store(url, test_scripts);
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 2, "db 6 must not see db 5's count");
    s->ops->destroy(s);

    redisContext *c = inspect(&srv);
    freeReplyObject(cmd(c, "AUTH s3cret"));
    freeReplyObject(cmd(c, "SELECT 5"));
    cr_assert_eq(cmd_int(c, "EXISTS %s", "ratekit:{r:k}:fixed_window"), 1);
    freeReplyObject(cmd(c, "SELECT 0"));
    cr_assert_eq(cmd_int(c, "EXISTS %s", "ratekit:{r:k}:fixed_window"), 0);
    redisFree(c);

    /* a wrong password: the ping says so, and decisions fail */
    snprintf(url, sizeof url, "redis://limiter:wrong@127.0.0.1:%d", srv.port);
    s = open_store(url, test_scripts);
    cr_assert_eq(rk_redis_store_ping(s, err, sizeof err), RK_ERR);
    cr_assert(strstr(err, "AUTH") != NULL, "message: %s", err);
    cr_assert(strstr(err, "wrong") == NULL, "the password leaked into: %s", err);
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_ERR);
    s->ops->destroy(s);

    /* no password at all */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    s = open_store(url, test_scripts);
    cr_assert_eq(rk_redis_store_ping(s, err, sizeof err), RK_ERR);
    s->ops->destroy(s);
}

Test(redis_store, ping_reports_an_unreachable_server) {
    int port = rk_test_free_port();
    char url[64], err[256] = "";
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    rk_store_t *s = open_store(url, test_scripts);
    cr_assert_eq(rk_redis_store_ping(s, err, sizeof err), RK_ERR);
    cr_assert(strstr(err, "refused") != NULL, "message: %s", err);
    s->ops->destroy(s);
}

Test(redis_store, recovers_from_script_flush) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 10);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert_eq(d.remaining, 9);

    redisContext *c = inspect(&srv);
    freeReplyObject(cmd(c, "SCRIPT FLUSH"));
    redisFree(c);

    rk_store_req_t batch[3] = {q, q, fixed_req("r", "other", 10)};
    rk_decision_t out[3];
    cr_assert_eq(s->ops->decide(s, batch, 3, out), RK_OK, "NOSCRIPT was not recovered");
    cr_assert_eq(out[0].remaining, 8);
    cr_assert_eq(out[1].remaining, 7);
    cr_assert_eq(out[2].remaining, 9);
    cr_assert(s->ops->healthy(s));
    s->ops->destroy(s);
}

Test(redis_store, pipelined_batch_answers_as_single_calls) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    enum { N = 12 };
    const char *keys[N] = {"a", "b", "a", "a", "c", "b", "a", "a", "b", "c", "c", "a"};
    rk_store_req_t batch[N], single[N];
    for (int i = 0; i < N; i++) {
        batch[i] = fixed_req("batch", keys[i], 3);
        batch[i].cost = 1 + i % 2;
        single[i] = batch[i];
        single[i].rule_id = "single";
    }
    rk_decision_t from_batch[N], from_single[N];
    cr_assert_eq(s->ops->decide(s, batch, N, from_batch), RK_OK);
    for (int i = 0; i < N; i++)
        cr_assert_eq(s->ops->decide(s, &single[i], 1, &from_single[i]), RK_OK);
    int allowed = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(from_batch[i].allowed, from_single[i].allowed, "request %d", i);
        cr_assert_eq(from_batch[i].remaining, from_single[i].remaining, "request %d", i);
        cr_assert_eq(from_batch[i].reset_ms, from_single[i].reset_ms, "request %d", i);
        cr_assert_eq(from_batch[i].retry_after_ms, from_single[i].retry_after_ms, "request %d", i);
        cr_assert_eq(from_batch[i].limit, 3);
        allowed += from_batch[i].allowed;
    }
    cr_assert(allowed > 0 && allowed < N, "the batch must mix allowed and denied (%d)", allowed);
    s->ops->destroy(s);
}

/* ---- one limit across instances ---------------------------------------- */

#define INSTANCES 2
#define THREADS_PER_INSTANCE 4
#define CALLS_PER_THREAD 60

typedef struct {
    rk_store_t *store;
    rk_store_req_t req;
    int thread;
    atomic_int *allowed;
    atomic_int *errors;
} hammer_t;

/*
 * Decides CALLS_PER_THREAD requests, in batches of 1 and 3, counting passes.
 * Concurrency requests each carry a lease id of their own.
 */
static void *hammer(void *arg) {
    hammer_t *h = arg;
    char leases[3][RK_LEASE_ID_LEN + 1];
    for (int i = 0; i < CALLS_PER_THREAD;) {
        size_t n = (i % 2) ? 3 : 1;
        if (i + (int)n > CALLS_PER_THREAD)
            n = 1;
        rk_store_req_t reqs[3] = {h->req, h->req, h->req};
        for (size_t j = 0; j < n; j++) {
            snprintf(leases[j], sizeof leases[j], "%016x%016x", h->thread, i + (int)j);
            if (h->req.limit.algorithm == RK_ALG_CONCURRENCY)
                reqs[j].lease_id = leases[j];
        }
        rk_decision_t out[3];
        if (h->store->ops->decide(h->store, reqs, n, out) != RK_OK) {
            atomic_fetch_add(h->errors, 1);
        } else {
            for (size_t j = 0; j < n; j++)
                atomic_fetch_add(h->allowed, out[j].allowed ? 1 : 0);
        }
        i += (int)n;
    }
    return NULL;
}

/*
 * INSTANCES stores (as separate ratekitd would have) hammer one key from
 * several threads each; returns how many requests passed in all.
 */
static int hammer_one_key(const rk_test_redis_t *r, const char *const *scripts,
                          rk_store_req_t req) {
    rk_store_t *stores[INSTANCES];
    pthread_t threads[INSTANCES * THREADS_PER_INSTANCE];
    hammer_t args[INSTANCES * THREADS_PER_INSTANCE];
    atomic_int allowed = 0, errors = 0;
    for (int i = 0; i < INSTANCES; i++)
        stores[i] = open_local(r, scripts);
    for (int t = 0; t < INSTANCES * THREADS_PER_INSTANCE; t++) {
        args[t] = (hammer_t){stores[t % INSTANCES], req, t, &allowed, &errors};
        pthread_create(&threads[t], NULL, hammer, &args[t]);
    }
    for (int t = 0; t < INSTANCES * THREADS_PER_INSTANCE; t++)
        pthread_join(threads[t], NULL);
    for (int i = 0; i < INSTANCES; i++)
        stores[i]->ops->destroy(stores[i]);
    cr_assert_eq(atomic_load(&errors), 0, "store errors under load");
    return atomic_load(&allowed);
}

Test(redis_store, two_instances_enforce_one_limit) {
    rk_test_redis_start(&srv, NULL);
    int passed = hammer_one_key(&srv, test_scripts, fixed_req("shared", "client-1", 100));
    cr_assert_eq(passed, 100, "%d of %d passed, limit 100", passed,
                 INSTANCES * THREADS_PER_INSTANCE * CALLS_PER_THREAD);
}

/* ---- failures ----------------------------------------------------------- */

/* Decides once and returns how long it took (ms); *st gets the status. */
static int64_t timed_decide(rk_store_t *s, const rk_store_req_t *q, rk_status_t *st) {
    rk_decision_t d;
    int64_t t0 = rk_mono_ms();
    *st = s->ops->decide(s, q, 1, &d);
    return rk_mono_ms() - t0;
}

/* Calls until a decision succeeds; the ms it took, or -1 after 5 s. */
static int64_t ms_until_back(rk_store_t *s, const rk_store_req_t *q) {
    int64_t t0 = rk_mono_ms();
    while (rk_mono_ms() - t0 < 5000) {
        rk_status_t st;
        timed_decide(s, q, &st);
        if (st == RK_OK)
            return rk_mono_ms() - t0;
        usleep(10000);
    }
    return -1;
}

Test(redis_store, killed_redis_fails_fast_and_is_used_again_after_restart) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 1000);
    rk_status_t st;
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);

    kill_redis(&srv);
    for (int i = 0; i < 10; i++) {
        int64_t ms = timed_decide(s, &q, &st);
        cr_assert_eq(st, RK_ERR, "call %d succeeded with redis down", i);
        cr_assert(ms <= COMMAND_TIMEOUT_MS + SLACK_MS, "call %d took %lld ms", i, (long long)ms);
    }
    cr_assert_not(s->ops->healthy(s));
    cr_assert_eq(s->ops->key_count(s), -1);

    restart_redis(&srv);
    int64_t back = ms_until_back(s, &q);
    cr_assert(back >= 0 && back <= 2000, "back on redis after %lld ms", (long long)back);
    cr_assert(s->ops->healthy(s));
    s->ops->destroy(s);
}

Test(redis_store, restart_while_idle_costs_no_failed_check) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 1000);
    rk_status_t st;
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);
    kill_redis(&srv);
    restart_redis(&srv);
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK, "the connection closed by the restart was not replaced");
    s->ops->destroy(s);
}

Test(redis_store, hung_redis_answers_within_the_timeout_then_at_once) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 1000);
    rk_status_t st;
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);

    rk_test_redis_signal(&srv, SIGSTOP);
    int64_t slowest = 0, last = 0;
    for (int i = 0; i < 8; i++) {
        last = timed_decide(s, &q, &st);
        cr_assert_eq(st, RK_ERR, "call %d succeeded with redis stopped", i);
        cr_assert(last <= COMMAND_TIMEOUT_MS + SLACK_MS, "call %d took %lld ms", i,
                  (long long)last);
        if (last > slowest)
            slowest = last;
    }
    cr_assert(slowest >= COMMAND_TIMEOUT_MS - 50, "no call waited for redis (%lld ms)",
              (long long)slowest);
    cr_assert(last <= 5, "the open breaker took %lld ms", (long long)last);
    cr_assert_not(s->ops->healthy(s));

    rk_test_redis_signal(&srv, SIGCONT);
    int64_t back = ms_until_back(s, &q);
    cr_assert(back >= 0 && back <= 2000, "back on redis after %lld ms", (long long)back);
    cr_assert(s->ops->healthy(s));
    s->ops->destroy(s);
}

/* Waits, calling nothing but healthy(), until the store says it is healthy; the ms it took, or -1
 * after 5 s. */
static int64_t ms_until_healthy(rk_store_t *s) {
    int64_t t0 = rk_mono_ms();
    while (rk_mono_ms() - t0 < 5000) {
        if (s->ops->healthy(s))
            return rk_mono_ms() - t0;
        usleep(10000);
    }
    return -1;
}

Test(redis_store, health_comes_back_without_a_call_once_a_hung_redis_resumes) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 1000);
    rk_status_t st;
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);
    rk_test_redis_signal(&srv, SIGSTOP);
    for (int i = 0; i < 4; i++)
        timed_decide(s, &q, &st);
    usleep(1500 * 1000); /* the prober meets the stopped server too */
    cr_assert_not(s->ops->healthy(s));
    rk_test_redis_signal(&srv, SIGCONT);
    int64_t back = ms_until_healthy(s);
    cr_assert(back >= 0 && back <= 2000, "healthy again after %lld ms", (long long)back);
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);
    s->ops->destroy(s);
}

Test(redis_store, a_store_whose_first_connection_failed_is_unhealthy_until_redis_answers) {
    rk_test_redis_start(&srv, NULL);
    kill_redis(&srv); /* its port, with nothing listening */
    rk_store_t *s = open_local(&srv, test_scripts);
    char err[256] = "";
    cr_assert_eq(rk_redis_store_ping(s, err, sizeof err), RK_ERR);
    cr_assert_not(s->ops->healthy(s), "healthy with no Redis ever reached");
    usleep(300 * 1000);
    cr_assert_not(s->ops->healthy(s));
    restart_redis(&srv);
    int64_t back = ms_until_healthy(s);
    cr_assert(back >= 0 && back <= 2000, "healthy after %lld ms", (long long)back);
    s->ops->destroy(s);
}

/* Sets maxmemory (bytes; "0": none) on the test's server, which evicts nothing. */
static void set_maxmemory(const rk_test_redis_t *r, const char *bytes) {
    redisContext *c = inspect(r);
    freeReplyObject(cmd(c, "CONFIG SET maxmemory-policy noeviction"));
    freeReplyObject(cmd(c, "CONFIG SET maxmemory %s", bytes));
    redisFree(c);
}

Test(redis_store, a_redis_that_refuses_writes_stays_unhealthy_until_a_write_goes_through) {
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, test_scripts);
    rk_store_req_t q = fixed_req("r", "k", 1000);
    rk_status_t st;
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);
    set_maxmemory(&srv, "1"); /* full: every write is refused with OOM, PING still answers */
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_ERR, "a check was counted while Redis refuses writes");
    for (int i = 0; i < 100; i++) { /* a second, many probes */
        cr_assert_not(s->ops->healthy(s), "healthy again after %d ms of refused writes", i * 10);
        usleep(10000);
    }
    set_maxmemory(&srv, "0");
    int64_t back = ms_until_healthy(s);
    cr_assert(back >= 0 && back <= 2000, "healthy after %lld ms", (long long)back);
    timed_decide(s, &q, &st);
    cr_assert_eq(st, RK_OK);
    s->ops->destroy(s);
}

/* ---- the algorithms, with the scripts from lua/ -------------------------- */

static bool have_scripts(void) {
    if (rk_lua_scripts_len != RK_ALG_COUNT)
        return false;
    for (size_t i = 0; i < rk_lua_scripts_len; i++)
        if (!rk_lua_scripts[i] || !rk_lua_scripts[i][0])
            return false;
    return true;
}

static rk_store_req_t alg_req(rk_algorithm_t alg, const char *key, int64_t limit, int64_t now) {
    rk_store_req_t q = fixed_req("alg", key, limit);
    q.limit.algorithm = alg;
    q.limit.window_ms = 3600000;
    q.now_ms = now;
    return q;
}

/*
 * Exactly `limit` requests at one instant pass, the next is denied with a
 * retry_after_ms, and the key has the documented name and a TTL.
 */
static void check_exact_limit(rk_algorithm_t alg) {
    if (!have_scripts())
        cr_skip_test("lua/ scripts not written yet");
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, NULL);
    int64_t now = 1700000000000;
    char lease[RK_LEASE_ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        rk_store_req_t q = alg_req(alg, "client", 5, now);
        snprintf(lease, sizeof lease, "%032d", i);
        q.lease_id = alg == RK_ALG_CONCURRENCY ? lease : NULL;
        rk_decision_t d;
        cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK, "%s call %d", rk_algorithm_name(alg), i);
        cr_assert(d.allowed, "%s: call %d denied", rk_algorithm_name(alg), i);
        cr_assert_eq(d.remaining, 4 - i, "%s: remaining", rk_algorithm_name(alg));
    }
    rk_store_req_t q = alg_req(alg, "client", 5, now);
    q.lease_id = alg == RK_ALG_CONCURRENCY ? "ffffffffffffffffffffffffffffffff" : NULL;
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert_not(d.allowed, "%s: call 6 allowed", rk_algorithm_name(alg));
    cr_assert_eq(d.remaining, 0);
    if (alg != RK_ALG_CONCURRENCY)
        cr_assert(d.retry_after_ms > 0, "%s: retry_after_ms %lld", rk_algorithm_name(alg),
                  (long long)d.retry_after_ms);

    char name[128];
    snprintf(name, sizeof name, "ratekit:{alg:client}:%s", rk_algorithm_name(alg));
    redisContext *c = inspect(&srv);
    cr_assert_eq(cmd_int(c, "EXISTS %s", name), 1, "no key %s", name);
    long long ttl = cmd_int(c, "PTTL %s", name);
    cr_assert(ttl > 0, "%s has no TTL (%lld)", name, ttl);
    redisFree(c);

    /* Two instances, several threads each, on another key: one limit. */
    int passed = hammer_one_key(&srv, NULL, alg_req(alg, "shared", 50, now));
    cr_assert_eq(passed, 50, "%s: %d passed, limit 50", rk_algorithm_name(alg), passed);
    s->ops->destroy(s);
}

Test(redis_store, fixed_window_allows_exactly_the_limit) {
    check_exact_limit(RK_ALG_FIXED_WINDOW);
}
Test(redis_store, sliding_window_allows_exactly_the_limit) {
    check_exact_limit(RK_ALG_SLIDING_WINDOW);
}
Test(redis_store, sliding_log_allows_exactly_the_limit) {
    check_exact_limit(RK_ALG_SLIDING_LOG);
}
Test(redis_store, token_bucket_allows_exactly_the_burst) {
    check_exact_limit(RK_ALG_TOKEN_BUCKET);
}
Test(redis_store, gcra_allows_exactly_the_burst) {
    check_exact_limit(RK_ALG_GCRA);
}
Test(redis_store, leaky_bucket_allows_exactly_the_burst) {
    check_exact_limit(RK_ALG_LEAKY_BUCKET);
}
Test(redis_store, concurrency_allows_exactly_the_limit_of_leases) {
    check_exact_limit(RK_ALG_CONCURRENCY);
}

Test(redis_store, concurrency_release_frees_a_lease_once) {
    if (!have_scripts())
        cr_skip_test("lua/ scripts not written yet");
    rk_test_redis_start(&srv, NULL);
    rk_store_t *s = open_local(&srv, NULL);
    const char *lease_a = "0123456789abcdef0123456789abcdef";
    const char *lease_b = "fedcba9876543210fedcba9876543210";
    rk_store_req_t q = alg_req(RK_ALG_CONCURRENCY, "worker", 1, -1);
    rk_decision_t d;
    q.lease_id = lease_a;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert(d.allowed);
    q.lease_id = lease_b;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert_not(d.allowed, "a second lease within a limit of 1");

    bool released = false;
    cr_assert_eq(s->ops->release(s, &q, lease_a, &released), RK_OK);
    cr_assert(released);
    cr_assert_eq(s->ops->release(s, &q, lease_a, &released), RK_OK);
    cr_assert_not(released, "a lease released twice");
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK);
    cr_assert(d.allowed, "the released slot was not reusable");
    s->ops->destroy(s);
}
