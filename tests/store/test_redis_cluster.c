/*
 * test_redis_cluster.c — the Redis Cluster store against a real cluster on
 * loopback: hash slots as Redis computes them, one exact limit per key from
 * two store instances with the keys spread over every master, scripts
 * reloaded on a node that lost them, health while a master fails or refuses
 * writes, and a slot migrated between two decisions of the same keys (ASK
 * while it moves, MOVED after, and the moment in between when the two owners
 * send requests to each other).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_cluster.h"
#include "redis_server.h"
#include "store/store.h"

#define LIMIT 5
#define NOW_MS 5000 /* explicit: no window boundary can fall inside a test */
#define WINDOW_MS 3600000

static rk_test_cluster_t cluster;
static rk_test_redis_t single;

static void stop_all(void) {
    rk_test_cluster_stop(&cluster);
    rk_test_redis_stop(&single);
}

TestSuite(redis_cluster, .fini = stop_all);

static rk_store_t *open_cluster(const char *seeds) {
    rk_redis_cluster_config_t cfg = {.seeds = seeds};
    char err[256] = "";
    rk_store_t *s = rk_redis_cluster_store_new(&cfg, err, sizeof err);
    if (!s)
        cr_fatal("cluster store refused %s: %s", seeds, err);
    return s;
}

/* A store that knows a single seed node: it must discover the others. */
static rk_store_t *open_via_node(size_t i) {
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", cluster.nodes[i].port);
    return open_cluster(seed);
}

static rk_store_req_t fixed_req(const char *rule, const char *key) {
    rk_store_req_t q = {
        .rule_id = rule,
        .key = key,
        .limit = {.algorithm = RK_ALG_FIXED_WINDOW,
                  .limit = LIMIT,
                  .window_ms = WINDOW_MS,
                  .burst = LIMIT,
                  .shape = false},
        .cost = 1,
        .now_ms = NOW_MS,
    };
    return q;
}

static unsigned key_slot(const char *rule, const char *key) {
    char k[300];
    int n = snprintf(k, sizeof k, "ratekit:{%s:%s}:fixed_window", rule, key);
    return rk_redis_cluster_keyslot(k, (size_t)n);
}

/* ---- slots ------------------------------------------------------------ */

Test(redis_cluster, crc16_matches_the_cluster_spec_test_vector) {
    cr_assert_eq(rk_redis_cluster_crc16("123456789", 9), 0x31C3);
    cr_assert_eq(rk_redis_cluster_keyslot("foo", 3), 12182);
    /* the hash tag decides: the first non-empty {...} */
    cr_assert_eq(rk_redis_cluster_keyslot("{user1000}.following", 20),
                 rk_redis_cluster_keyslot("user1000", 8));
    cr_assert_eq(rk_redis_cluster_keyslot("foo{}{bar}", 10),
                 rk_redis_cluster_crc16("foo{}{bar}", 10) & 16383);
    cr_assert_eq(rk_redis_cluster_keyslot("foo{{bar}}zap", 13),
                 rk_redis_cluster_keyslot("{bar", 4));
    cr_assert_eq(rk_redis_cluster_keyslot("foo{bar}{zap}", 13), rk_redis_cluster_keyslot("bar", 3));
}

Test(redis_cluster, keyslot_agrees_with_cluster_keyslot_of_a_real_node) {
    char bus[16];
    snprintf(bus, sizeof bus, "%d", rk_test_free_port());
    const char *args[] = {"--cluster-enabled",
                          "yes",
                          "--cluster-config-file",
                          "nodes.conf",
                          "--cluster-port",
                          bus,
                          NULL};
    rk_test_redis_start(&single, args);
    redisContext *c = redisConnect("127.0.0.1", single.port);
    cr_assert(c && !c->err);
    static const char alphabet[] = "ab{}:1x";
    unsigned seed = 42;
    for (int i = 0; i < 600; i++) {
        char key[300];
        size_t len;
        if (i < 100) { /* ratekit's own layout */
            len = (size_t)snprintf(key, sizeof key, "ratekit:{api-per-ip:203.0.113.%d}:gcra", i);
        } else { /* braces anywhere: empty tags, unclosed tags, several tags */
            len = (size_t)(rand_r(&seed) % 16);
            for (size_t k = 0; k < len; k++)
                key[k] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
        }
        const char *argv[3] = {"CLUSTER", "KEYSLOT", key};
        size_t lens[3] = {7, 7, len};
        redisReply *r = redisCommandArgv(c, 3, argv, lens);
        cr_assert(r && r->type == REDIS_REPLY_INTEGER);
        cr_assert_eq((unsigned)r->integer, rk_redis_cluster_keyslot(key, len), "key \"%.*s\"",
                     (int)len, key);
        freeReplyObject(r);
    }
    redisFree(c);
}

Test(redis_cluster, refuses_a_bad_seed_list_with_a_reason) {
    static const char *const bad[][2] = {
        {"", "seed"},
        {"127.0.0.1", "host:port"},
        {"127.0.0.1:0", "port"},
        {"127.0.0.1:70000", "port"},
        {"127.0.0.1:7000,,127.0.0.1:7001", "empty"},
        {"127.0.0.1:7000,", "empty"},
        {"::1:7000", "brackets"},
        {"127.0.0.1:7000 ", "port"},
        {"bad host:7000", "host"},
        /* credentials: only in a URL seed, the same on every seed, never repeated */
        {":s3cr3t@127.0.0.1:7000", "URL seed"},
        {"redis://:s3cr3t@127.0.0.1:7000/1", "database"},
        {"redis://:s3cr3t%zz@127.0.0.1:7000", "percent-encoding"},
        {"rediss://:s3cr3t@127.0.0.1:7000", "TLS"},
        {"redis://:s3cr3t@127.0.0.1:7000,redis://u:s3cr3t@127.0.0.1:7001", "differ"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rk_redis_cluster_config_t cfg = {.seeds = bad[i][0]};
        char err[256] = "";
        rk_store_t *s = rk_redis_cluster_store_new(&cfg, err, sizeof err);
        cr_assert_null(s, "accepted \"%s\"", bad[i][0]);
        cr_assert(strstr(err, bad[i][1]) != NULL, "\"%s\": %s", bad[i][0], err);
        cr_assert(strstr(err, "s3cr3t") == NULL, "\"%s\": %s", bad[i][0], err);
    }
    rk_redis_cluster_config_t ok = {.seeds = "127.0.0.1:7000,[::1]:7001,redis-2.local:6379,"
                                             "redis://:s3cr3t@127.0.0.1:7002,redis://h:7003"};
    rk_store_t *s = rk_redis_cluster_store_new(&ok, NULL, 0);
    cr_assert_not_null(s);
    cr_assert_str_eq(s->ops->name, "redis-cluster");
    s->ops->destroy(s);
}

/* ---- limits over every master ------------------------------------------ */

#define SPREAD_KEYS 300
#define BATCH 50

typedef struct {
    rk_store_t *store;
    atomic_int *allowed; /* per key */
    atomic_int failures;
} load_t;

/* 4 rounds of every key, in batches of BATCH: each key asked 4 times. */
static void *spread_load(void *p) {
    load_t *l = p;
    for (int round = 0; round < 4; round++) {
        for (int from = 0; from < SPREAD_KEYS; from += BATCH) {
            char keys[BATCH][16];
            rk_store_req_t reqs[BATCH];
            rk_decision_t out[BATCH];
            for (int i = 0; i < BATCH; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", from + i);
                reqs[i] = fixed_req("spread", keys[i]);
            }
            if (l->store->ops->decide(l->store, reqs, BATCH, out) != RK_OK) {
                atomic_fetch_add(&l->failures, 1);
                continue;
            }
            for (int i = 0; i < BATCH; i++)
                if (out[i].allowed)
                    atomic_fetch_add(&l->allowed[from + i], 1);
        }
    }
    return NULL;
}

Test(redis_cluster, two_stores_enforce_exact_limits_on_keys_spread_over_every_master) {
    rk_test_cluster_start(&cluster, 3, 0);
    rk_store_t *a = open_cluster(cluster.seeds), *b = open_via_node(2);
    static atomic_int allowed[SPREAD_KEYS];
    load_t la = {.store = a, .allowed = allowed}, lb = {.store = b, .allowed = allowed};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, spread_load, &la);
    pthread_create(&tb, NULL, spread_load, &lb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(atomic_load(&la.failures) + atomic_load(&lb.failures), 0);
    for (int i = 0; i < SPREAD_KEYS; i++)
        cr_assert_eq(atomic_load(&allowed[i]), LIMIT, "key k%d: %d allowed", i,
                     atomic_load(&allowed[i]));
    long long total = 0;
    for (size_t m = 0; m < 3; m++) {
        long long n = rk_test_cluster_dbsize(&cluster, m);
        cr_assert_gt(n, 0, "master %zu holds no key", m);
        total += n;
    }
    cr_assert_eq(total, SPREAD_KEYS);
    cr_assert_eq(a->ops->key_count(a), SPREAD_KEYS);
    cr_assert(a->ops->healthy(a) && b->ops->healthy(b));

    /* Every master forgets its scripts: each reloads its own, nothing fails. */
    rk_store_req_t reqs[3] = {fixed_req("spread", "k0"), fixed_req("spread", "k1"),
                              fixed_req("spread", "k2")};
    rk_decision_t out[3];
    cr_assert_eq(b->ops->decide(b, reqs, 3, out), RK_OK); /* this thread's connections */
    for (size_t m = 0; m < 3; m++)
        freeReplyObject(rk_test_cluster_cmd(&cluster, m, "SCRIPT FLUSH"));
    cr_assert_eq(b->ops->decide(b, reqs, 3, out), RK_OK);
    for (int i = 0; i < 3; i++)
        cr_assert(out[i].allowed == false && out[i].remaining == 0);

    /* reset forgets one key, on the node that holds it */
    cr_assert_eq(a->ops->reset(a, "spread", "k1", RK_ALG_FIXED_WINDOW), RK_OK);
    cr_assert_eq(b->ops->decide(b, &reqs[1], 1, out), RK_OK);
    cr_assert(out[0].allowed && out[0].remaining == LIMIT - 1);
    a->ops->destroy(a);
    b->ops->destroy(b);
}

/*
 * A batch over two masters, one of them stopped: the call fails, the stopped
 * master's request is left undecided, and the other's holds the decision its
 * master made (and counted).
 */
Test(redis_cluster, a_stopped_master_leaves_undecided_only_the_requests_it_holds) {
    rk_test_cluster_start(&cluster, 2, 0);
    rk_redis_cluster_config_t cfg = {.seeds = cluster.seeds, .timeout_ms = 200};
    char err[256] = "";
    rk_store_t *s = rk_redis_cluster_store_new(&cfg, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    int victim = rk_test_cluster_owner(&cluster, key_slot("stop", "k0"));
    char other[16] = "";
    for (int i = 1; i < 100 && !other[0]; i++) {
        snprintf(other, sizeof other, "k%d", i);
        if (rk_test_cluster_owner(&cluster, key_slot("stop", other)) == victim)
            other[0] = '\0';
    }
    rk_store_req_t reqs[2] = {fixed_req("stop", "k0"), fixed_req("stop", other)};
    rk_decision_t out[2];
    cr_assert_eq(s->ops->decide(s, reqs, 2, out), RK_OK); /* connected, scripts loaded */
    kill(cluster.nodes[victim].pid, SIGSTOP);
    out[0].limit = out[1].limit = RK_STORE_UNDECIDED;
    rk_status_t st = s->ops->decide(s, reqs, 2, out);
    kill(cluster.nodes[victim].pid, SIGCONT);
    cr_assert_eq(st, RK_ERR);
    cr_assert_eq(out[0].limit, RK_STORE_UNDECIDED);
    cr_assert(out[1].limit == LIMIT && out[1].allowed && out[1].remaining == LIMIT - 2);
    s->ops->destroy(s);
}

/* A key of rule "health" whose master is (want_victim) or is not victim. */
static void key_on(int victim, bool want_victim, char *key, size_t size) {
    for (int i = 0; i < 1000; i++) {
        snprintf(key, size, "k%d", i);
        if ((rk_test_cluster_owner(&cluster, key_slot("health", key)) == victim) == want_victim)
            return;
    }
    cr_fatal("no key found");
}

/*
 * One master of three stopped, and calls that touch its keys or only those
 * of the others, in turn: the store reports itself unhealthy after every one
 * of them, not only after those that met the stopped master, and healthy
 * again once that master answers, without any call.
 */
Test(redis_cluster, health_stays_down_while_one_master_fails_whatever_the_calls_touch) {
    rk_test_cluster_start(&cluster, 3, 0);
    rk_redis_cluster_config_t cfg = {.seeds = cluster.seeds, .timeout_ms = 100};
    char err[256] = "";
    rk_store_t *s = rk_redis_cluster_store_new(&cfg, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    char stalled[16], healthy[16];
    int victim = rk_test_cluster_owner(&cluster, key_slot("health", "k0"));
    key_on(victim, true, stalled, sizeof stalled);
    key_on(victim, false, healthy, sizeof healthy);
    rk_store_req_t on_victim = fixed_req("health", stalled),
                   elsewhere = fixed_req("health", healthy);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &on_victim, 1, &d), RK_OK);
    cr_assert_eq(s->ops->decide(s, &elsewhere, 1, &d), RK_OK);
    cr_assert(s->ops->healthy(s));

    kill(cluster.nodes[victim].pid, SIGSTOP); /* the suite's end kills it, stopped or not */
    for (int i = 0; i < 8; i++) {
        bool touches_victim = i % 2 == 0;
        rk_status_t st = s->ops->decide(s, touches_victim ? &on_victim : &elsewhere, 1, &d);
        cr_assert_eq(st, touches_victim ? RK_ERR : RK_OK, "call %d", i);
        cr_assert_not(s->ops->healthy(s), "healthy after call %d (%s)", i,
                      touches_victim ? "on the stopped master" : "on healthy masters only");
    }
    kill(cluster.nodes[victim].pid, SIGCONT);
    int64_t t0 = rk_mono_ms();
    while (!s->ops->healthy(s) && rk_mono_ms() - t0 < 5000)
        usleep(10000);
    cr_assert(s->ops->healthy(s), "still unhealthy 5 s after the master resumed");
    cr_assert_eq(s->ops->decide(s, &on_victim, 1, &d), RK_OK);
    s->ops->destroy(s);
}

/* Sets maxmemory (bytes; "0": none) on cluster node i, which evicts nothing. */
static void set_maxmemory(size_t i, const char *bytes) {
    freeReplyObject(rk_test_cluster_cmd(&cluster, i, "CONFIG SET maxmemory-policy noeviction"));
    freeReplyObject(rk_test_cluster_cmd(&cluster, i, "CONFIG SET maxmemory %s", bytes));
}

/*
 * A master that refuses writes (maxmemory reached: OOM) still answers PING:
 * the store stays unhealthy for as long as it refuses them, whatever its
 * probes, and is healthy again once it takes one, without any call.
 */
Test(redis_cluster, a_master_that_refuses_writes_keeps_the_store_unhealthy_until_it_takes_one) {
    rk_test_cluster_start(&cluster, 2, 0);
    rk_store_t *s = open_cluster(cluster.seeds);
    char full[16], other[16];
    int victim = rk_test_cluster_owner(&cluster, key_slot("health", "k0"));
    key_on(victim, true, full, sizeof full);
    key_on(victim, false, other, sizeof other);
    rk_store_req_t on_victim = fixed_req("health", full), elsewhere = fixed_req("health", other);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &on_victim, 1, &d), RK_OK);
    cr_assert(s->ops->healthy(s));
    set_maxmemory((size_t)victim, "1"); /* every write refused with OOM, PING answered */
    cr_assert_eq(s->ops->decide(s, &on_victim, 1, &d), RK_ERR);
    for (int i = 0; i < 100; i++) { /* a second: ten probes */
        cr_assert_not(s->ops->healthy(s), "healthy again after %d ms of refused writes", i * 10);
        if (i % 20 == 0)
            cr_assert_eq(s->ops->decide(s, &elsewhere, 1, &d), RK_OK);
        usleep(10000);
    }
    set_maxmemory((size_t)victim, "0");
    int64_t t0 = rk_mono_ms();
    while (!s->ops->healthy(s) && rk_mono_ms() - t0 < 5000)
        usleep(10000);
    int64_t back = rk_mono_ms() - t0;
    cr_assert(s->ops->healthy(s) && back <= 2000, "healthy after %lld ms", (long long)back);
    cr_assert_eq(s->ops->decide(s, &on_victim, 1, &d), RK_OK);
    s->ops->destroy(s);
}

Test(redis_cluster, commands_reach_the_node_owning_their_key) {
    rk_test_cluster_start(&cluster, 3, 0);
    rk_store_t *s = open_via_node(1);
    /* keys on every master, one pipeline per node */
    char keys[3][32];
    size_t lens[3];
    int found = 0;
    for (int i = 0; found < 3 && i < 1000; i++) {
        char k[32];
        size_t len = (size_t)snprintf(k, sizeof k, "ratekit:stats:{%d}", i);
        int owner = rk_test_cluster_owner(&cluster, rk_redis_cluster_keyslot(k, len));
        if (owner == found) {
            memcpy(keys[found], k, len + 1);
            lens[found++] = len;
        }
    }
    cr_assert_eq(found, 3);
    const char *argv[3][3];
    size_t argl[3][3];
    rk_redis_cluster_cmd_t cmds[3];
    for (int i = 0; i < 3; i++) {
        argv[i][0] = "INCRBY", argl[i][0] = 6;
        argv[i][1] = keys[i], argl[i][1] = lens[i];
        argv[i][2] = "7", argl[i][2] = 1;
        cmds[i] = (rk_redis_cluster_cmd_t){keys[i], lens[i], 3, argv[i], argl[i]};
    }
    redisReply *replies[3];
    cr_assert_eq(rk_redis_cluster_run(s, cmds, 3, replies), RK_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(replies[i]->type, REDIS_REPLY_INTEGER);
        cr_assert_eq(replies[i]->integer, 7);
        freeReplyObject(replies[i]);
        cr_assert_eq(rk_test_cluster_dbsize(&cluster, (size_t)i), 1);
    }
    /* a connection of one's own to the owner of a key answers without MOVED */
    char err[256] = "";
    redisContext *c = rk_redis_cluster_connect_for_key(s, keys[2], lens[2], err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    redisReply *r = redisCommand(c, "GET %s", keys[2]);
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "7") == 0);
    freeReplyObject(r);
    redisFree(c);
    s->ops->destroy(s);
}

/* ---- a slot migrated between decisions --------------------------------- */

/* Decides key once on s; must succeed; returns the decision. */
static rk_decision_t decide_one(rk_store_t *s, const char *key) {
    rk_store_req_t q = fixed_req("mig", key);
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &q, 1, &d), RK_OK, "decide %s failed", key);
    return d;
}

/* Whether node holds key (asked with ASKING, so that an importing node answers too). */
static bool node_has(size_t node, const char *key) {
    redisContext *c = rk_test_cluster_connect(&cluster, node);
    freeReplyObject(redisCommand(c, "ASKING"));
    redisReply *r = redisCommand(c, "EXISTS ratekit:{mig:%s}:fixed_window", key);
    cr_assert_not_null(r);
    bool has = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    redisFree(c);
    return has;
}

static void migrate_keys(size_t src, size_t dst, char keys[][16], int from, int to) {
    for (int i = from; i < to; i++) {
        redisReply *r = rk_test_cluster_cmd(
            &cluster, src, "MIGRATE 127.0.0.1 %d ratekit:{mig:%s}:fixed_window 0 5000",
            cluster.nodes[dst].port, keys[i]);
        cr_assert(r->type == REDIS_REPLY_STATUS, "MIGRATE %s: %s", keys[i], r->str);
        freeReplyObject(r);
    }
}

Test(redis_cluster, slot_migration_between_decisions_keeps_exact_counts) {
    rk_test_cluster_start(&cluster, 3, 0);
    /* five keys in one slot: four that exist before the move, one created during it */
    char keys[5][16];
    unsigned slot = key_slot("mig", "m0");
    snprintf(keys[0], sizeof keys[0], "m0");
    int found = 1;
    for (int i = 1; found < 5 && i < 1000000; i++) {
        char k[16];
        snprintf(k, sizeof k, "m%d", i);
        if (key_slot("mig", k) == slot)
            memcpy(keys[found++], k, sizeof k);
    }
    cr_assert_eq(found, 5);
    size_t src = (size_t)rk_test_cluster_owner(&cluster, slot), dst = (src + 1) % 3,
           other = (src + 2) % 3;
    rk_store_t *a = open_cluster(cluster.seeds), *b = open_via_node(other);

    for (int i = 0; i < 4; i++) {
        decide_one(a, keys[i]);
        decide_one(b, keys[i]);
        cr_assert(node_has(src, keys[i]));
    }

    /* The slot starts moving: two keys go over, two stay. */
    freeReplyObject(rk_test_cluster_cmd(&cluster, dst, "CLUSTER SETSLOT %u IMPORTING %s", slot,
                                        cluster.id[src]));
    freeReplyObject(rk_test_cluster_cmd(&cluster, src, "CLUSTER SETSLOT %u MIGRATING %s", slot,
                                        cluster.id[dst]));
    migrate_keys(src, dst, keys, 0, 2);
    cr_assert(node_has(dst, keys[0]) && !node_has(src, keys[0]));

    /* Moved keys are reached by ASK; the others where they are; a new key is made on dst. */
    for (int i = 0; i < 4; i++) {
        rk_decision_t d = decide_one(i % 2 ? a : b, keys[i]);
        cr_assert(d.allowed && d.remaining == LIMIT - 3, "%s: remaining %lld", keys[i],
                  (long long)d.remaining);
    }
    rk_decision_t d = decide_one(a, keys[4]);
    cr_assert(d.allowed && d.remaining == LIMIT - 1);
    cr_assert(node_has(dst, keys[4]) && !node_has(src, keys[4]));
    cr_assert(node_has(src, keys[2]) && node_has(src, keys[3]));

    /*
     * The move ends, the old owner first: it answers MOVED to the new one,
     * which, not told yet, still imports and answers MOVED back but serves
     * under ASKING.
     */
    migrate_keys(src, dst, keys, 2, 4);
    freeReplyObject(
        rk_test_cluster_cmd(&cluster, src, "CLUSTER SETSLOT %u NODE %s", slot, cluster.id[dst]));
    int allowed[5] = {3, 3, 3, 3, 1};
    for (int i = 0; i < 5; i++)
        allowed[i] += decide_one(i % 2 ? a : b, keys[i]).allowed;
    for (size_t n = 0; n < 3; n++)
        if (n != src)
            freeReplyObject(rk_test_cluster_cmd(&cluster, n, "CLUSTER SETSLOT %u NODE %s", slot,
                                                cluster.id[dst]));
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < 5; i++)
            allowed[i] += decide_one(round % 2 ? a : b, keys[i]).allowed;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(allowed[i], LIMIT, "%s: %d allowed", keys[i], allowed[i]);
    for (int i = 0; i < 5; i++)
        cr_assert(node_has(dst, keys[i]));
    cr_assert_eq(rk_test_cluster_dbsize(&cluster, src), 0);
    a->ops->destroy(a);
    b->ops->destroy(b);
}
