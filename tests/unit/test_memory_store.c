/*
 * test_memory_store.c — the embedded store (server/src/store/memory.c):
 * the same decisions as the algorithms, exact under concurrency, expiry,
 * the max_keys bound, peeks, resets, leases.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

#define T0 1700000000000LL /* an arbitrary epoch time in ms */

static rk_limit_t limit_of(rk_algorithm_t alg, int64_t limit, int64_t window_ms, int64_t burst) {
    rk_limit_t l = {.algorithm = alg, .limit = limit, .window_ms = window_ms, .burst = burst};
    return l;
}

static rk_store_req_t request(const char *rule_id, const char *key, rk_limit_t lim, int64_t cost,
                              int64_t now_ms) {
    rk_store_req_t r = {.rule_id = rule_id,
                        .key = key,
                        .limit = lim,
                        .cost = cost,
                        .now_ms = now_ms,
                        .lease_id = NULL};
    return r;
}

static rk_decision_t decide(rk_store_t *s, rk_store_req_t r) {
    rk_decision_t d;
    cr_assert_eq(s->ops->decide(s, &r, 1, &d), RK_OK, "decide failed");
    return d;
}

static void assert_same_decision(const rk_decision_t *got, const rk_decision_t *want, int step) {
    cr_assert_eq(got->allowed, want->allowed, "step %d: allowed %d, want %d", step, got->allowed,
                 want->allowed);
    cr_assert_eq(got->limit, want->limit, "step %d: limit", step);
    cr_assert_eq(got->remaining, want->remaining, "step %d: remaining %lld, want %lld", step,
                 (long long)got->remaining, (long long)want->remaining);
    cr_assert_eq(got->reset_ms, want->reset_ms, "step %d: reset_ms %lld, want %lld", step,
                 (long long)got->reset_ms, (long long)want->reset_ms);
    cr_assert_eq(got->retry_after_ms, want->retry_after_ms, "step %d: retry_after_ms", step);
    cr_assert_eq(got->delay_ms, want->delay_ms, "step %d: delay_ms", step);
}

/* A deterministic pseudo-random sequence for the request streams. */
static uint64_t next_random(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The next time of a request stream: mostly forward by up to a tenth of a
 * window, now and then by up to 1.5 windows (so states expire). */
static int64_t next_time(uint64_t *rng, int64_t now, int64_t window_ms) {
    uint64_t r = next_random(rng);
    if (r % 7 == 0)
        return now + (int64_t)(r >> 8) % (window_ms * 3 / 2);
    return now + (int64_t)(r >> 8) % (window_ms / 10 + 1);
}

TestSuite(memory_store, .timeout = 60);

Test(memory_store, answers_the_same_decisions_as_the_algorithm_for_every_cell_algorithm) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_algorithm_t algs[] = {RK_ALG_FIXED_WINDOW, RK_ALG_SLIDING_WINDOW, RK_ALG_TOKEN_BUCKET,
                             RK_ALG_GCRA, RK_ALG_LEAKY_BUCKET};
    for (size_t a = 0; a < RK_ARRAY_LEN(algs); a++) {
        for (int shape = 0; shape < 2; shape++) {
            rk_limit_t lim = limit_of(algs[a], 10, 1000, 5);
            lim.shape = shape;
            rk_cell_t cell = {0, 0, 0};
            uint64_t rng = 0x9e3779b97f4a7c15ULL + a;
            int64_t now = T0;
            for (int step = 0; step < 3000; step++) {
                now = next_time(&rng, now, lim.window_ms);
                int64_t cost = (int64_t)(next_random(&rng) % 4);
                rk_decision_t want, got = decide(s, request("r", "k", lim, cost, now));
                rk_cell_decide(&lim, &cell, now, cost, &want);
                assert_same_decision(&got, &want, step);
            }
            s->ops->reset(s, "r", "k", algs[a]);
        }
    }
    s->ops->destroy(s);
}

/* Limits 1 to 3 keep logs near the 2 entries packed in an entry (memory_state.h). */
Test(memory_store, answers_the_same_decisions_as_the_algorithm_for_sliding_log) {
    rk_store_t *s = rk_memory_store_new(1000);
    const int64_t limits[] = {1, 2, 3, 20};
    for (size_t i = 0; i < RK_ARRAY_LEN(limits); i++) {
        rk_limit_t lim = limit_of(RK_ALG_SLIDING_LOG, limits[i], 1000, limits[i]);
        rk_log_t log = {0};
        uint64_t rng = 12345 + i;
        int64_t now = T0;
        for (int step = 0; step < 3000; step++) {
            now = next_time(&rng, now, lim.window_ms);
            int64_t cost = (int64_t)(next_random(&rng) % 4);
            rk_decision_t want, got = decide(s, request("log", "k", lim, cost, now));
            cr_assert_eq(rk_log_decide(&lim, &log, now, cost, &want), RK_OK);
            assert_same_decision(&got, &want, step);
        }
        rk_log_free(&log);
        s->ops->reset(s, "log", "k", RK_ALG_SLIDING_LOG);
    }
    s->ops->destroy(s);
}

Test(memory_store, clamps_a_clock_that_runs_behind_the_state) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t fw = limit_of(RK_ALG_FIXED_WINDOW, 2, 1000, 2);
    cr_assert(decide(s, request("r", "k", fw, 2, T0 + 500)).allowed);
    cr_assert(!decide(s, request("r", "k", fw, 1, T0 + 300)).allowed, "still the same window");
    cr_assert(decide(s, request("r", "k", fw, 1, T0 + 1000)).allowed, "the next window");

    /* A request stamped behind the state must not make it expire early,
     * however many sweeps run meanwhile. */
    rk_limit_t tb = limit_of(RK_ALG_TOKEN_BUCKET, 10, 1000, 5);
    rk_cell_t cell = {0, 0, 0};
    rk_decision_t want, got;
    struct {
        int64_t now, cost;
    } steps[] = {{T0 + 10000, 5}, {T0 + 9000, 0}, {T0 + 9000, 1}};
    for (size_t i = 0; i < RK_ARRAY_LEN(steps); i++) {
        got = decide(s, request("r", "tb", tb, steps[i].cost, steps[i].now));
        rk_cell_decide(&tb, &cell, steps[i].now, steps[i].cost, &want);
        assert_same_decision(&got, &want, (int)i);
    }
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "sweeper%d", i);
        decide(s, request("r", key, tb, 0, T0 + 10300));
    }
    got = decide(s, request("r", "tb", tb, 0, T0 + 10300));
    rk_cell_decide(&tb, &cell, T0 + 10300, 0, &want);
    assert_same_decision(&got, &want, 99);
    s->ops->destroy(s);
}

Test(memory_store, decides_each_request_of_a_batch_on_its_own_key) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t one = limit_of(RK_ALG_FIXED_WINDOW, 1, 60000, 1);
    rk_store_req_t reqs[3] = {request("r", "a", one, 1, T0), request("r", "b", one, 1, T0),
                              request("r", "a", one, 1, T0)};
    rk_decision_t out[3];
    cr_assert_eq(s->ops->decide(s, reqs, 3, out), RK_OK);
    cr_assert(out[0].allowed, "first use of key a passes");
    cr_assert(out[1].allowed, "key b has its own counter");
    cr_assert(!out[2].allowed, "second use of key a in the batch is denied");
    cr_assert_eq(s->ops->key_count(s), 2);
    s->ops->destroy(s);
}

Test(memory_store, separates_rules_keys_and_algorithms) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t fw = limit_of(RK_ALG_FIXED_WINDOW, 1, 60000, 1);
    rk_limit_t tb = limit_of(RK_ALG_TOKEN_BUCKET, 1, 60000, 1);
    cr_assert(decide(s, request("r1", "k", fw, 1, T0)).allowed);
    cr_assert(!decide(s, request("r1", "k", fw, 1, T0)).allowed);
    cr_assert(decide(s, request("r2", "k", fw, 1, T0)).allowed, "another rule");
    cr_assert(decide(s, request("r1", "k2", fw, 1, T0)).allowed, "another key");
    cr_assert(decide(s, request("r1", "k", tb, 1, T0)).allowed, "another algorithm");
    /* The identity is not a plain concatenation of rule and key. */
    cr_assert(decide(s, request("r1k", "", fw, 1, T0)).allowed);
    cr_assert_eq(s->ops->key_count(s), 5);
    s->ops->destroy(s);
}

typedef struct {
    rk_store_t *store;
    rk_limit_t lim;
    int attempts;
    int batch;
    int allowed;
} hammer_t;

/* Sends attempts requests for one key (in batches of `batch`), counting passes. */
static void *hammer_one_key(void *arg) {
    hammer_t *h = arg;
    rk_store_req_t reqs[4];
    rk_decision_t out[4];
    for (int i = 0; i < 4; i++)
        reqs[i] = request("hot", "one-key", h->lim, 1, T0 + 500);
    for (int done = 0; done < h->attempts; done += h->batch) {
        if (h->store->ops->decide(h->store, reqs, (size_t)h->batch, out) != RK_OK)
            return NULL;
        for (int i = 0; i < h->batch; i++)
            h->allowed += out[i].allowed;
    }
    return NULL;
}

Test(memory_store, admits_exactly_the_limit_when_eight_threads_share_one_key) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t lim = limit_of(RK_ALG_FIXED_WINDOW, 7777, 60000, 7777);
    hammer_t h[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer_t){.store = s, .lim = lim, .attempts = 4000, .batch = 1 + i % 4};
        pthread_create(&th[i], NULL, hammer_one_key, &h[i]);
    }
    int allowed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        allowed += h[i].allowed;
    }
    cr_assert_eq(allowed, 7777, "allowed %d of 32000 with a limit of 7777", allowed);
    rk_decision_t d = decide(s, request("hot", "one-key", lim, 0, T0 + 500));
    cr_assert_eq(d.remaining, 0);
    s->ops->destroy(s);
}

Test(memory_store, keeps_a_hundred_thousand_keys_apart) {
    enum { KEYS = 100000 };
    rk_store_t *s = rk_memory_store_new(1000000);
    rk_limit_t lim = limit_of(RK_ALG_GCRA, 1, 60000, 1);
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "client-%d", i);
        cr_assert(decide(s, request("r", key, lim, 1, T0)).allowed, "first request of %s", key);
    }
    cr_assert_eq(s->ops->key_count(s), KEYS);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "client-%d", i);
        cr_assert(!decide(s, request("r", key, lim, 1, T0 + 10)).allowed, "second of %s", key);
    }
    cr_assert_eq(s->ops->key_count(s), KEYS);
    cr_assert_eq(rk_memory_store_evictions(s), 0);
    s->ops->destroy(s);
}

Test(memory_store, frees_expired_entries_as_time_passes) {
    enum { KEYS = 2000 };
    rk_store_t *s = rk_memory_store_new(100000);
    rk_limit_t lim = limit_of(RK_ALG_FIXED_WINDOW, 5, 1000, 5);
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        decide(s, request("r", key, lim, 1, T0));
    }
    cr_assert_eq(s->ops->key_count(s), KEYS);
    /* Before the window ends nothing is freed. */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "other%d", i);
        decide(s, request("r", key, lim, 0, T0 + 900));
    }
    cr_assert_eq(s->ops->key_count(s), KEYS);
    /* After it, the requests' sweeps free every entry, peeks create none. */
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "other%d", i);
        decide(s, request("r", key, lim, 0, T0 + 1000 + i / 1000));
    }
    cr_assert_eq(s->ops->key_count(s), 0, "%lld keys left", (long long)s->ops->key_count(s));
    cr_assert_eq(rk_memory_store_evictions(s), 0, "expiry is not eviction");
    /* An expired key answers as fresh. */
    rk_decision_t d = decide(s, request("r", "k1", lim, 1, T0 + 5000));
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 4);
    s->ops->destroy(s);
}

/* The places that sweeps free go to the inserts that follow them: the count
 * must still come back to exactly zero once every key has expired. */
Test(memory_store, counts_keys_exactly_while_new_keys_replace_expired_ones) {
    enum { KEYS = 3000, GENERATIONS = 8 };
    rk_store_t *s = rk_memory_store_new(100000);
    rk_limit_t lim = limit_of(RK_ALG_FIXED_WINDOW, 5, 1000, 5);
    char key[32];
    for (int g = 0; g < GENERATIONS; g++) {
        for (int i = 0; i < KEYS; i++) {
            snprintf(key, sizeof key, "g%d-k%d", g, i);
            cr_assert(decide(s, request("r", key, lim, 1, T0 + g * 2000)).allowed);
        }
        int64_t held = s->ops->key_count(s);
        cr_assert(held >= KEYS && held <= 2 * KEYS, "%lld keys held in generation %d",
                  (long long)held, g);
    }
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "peek%d", i);
        decide(s, request("r", key, lim, 0, T0 + GENERATIONS * 2000 + i / 1000));
    }
    cr_assert_eq(s->ops->key_count(s), 0, "%lld keys left", (long long)s->ops->key_count(s));
    cr_assert_eq(rk_memory_store_evictions(s), 0);
    s->ops->destroy(s);
}

Test(memory_store, never_holds_more_than_max_keys_and_counts_evictions) {
    enum { MAX = 1000, FLOOD = 30000 };
    rk_store_t *s = rk_memory_store_new(MAX);
    rk_limit_t lim = limit_of(RK_ALG_TOKEN_BUCKET, 10, 3600000, 10);
    char key[32];
    for (int i = 0; i < FLOOD; i++) {
        snprintf(key, sizeof key, "flood-%d", i);
        cr_assert(decide(s, request("r", key, lim, 1, T0 + i)).allowed);
        cr_assert_leq(s->ops->key_count(s), MAX, "%lld keys after %d inserts",
                      (long long)s->ops->key_count(s), i + 1);
    }
    cr_assert_eq(s->ops->key_count(s), MAX);
    cr_assert_eq(rk_memory_store_evictions(s), FLOOD - MAX);
    /* The victims are those closest to expiry: the most recent keys stay. */
    int kept_recent = 0;
    for (int i = FLOOD - 100; i < FLOOD; i++) {
        snprintf(key, sizeof key, "flood-%d", i);
        kept_recent += decide(s, request("r", key, lim, 0, T0 + FLOOD)).remaining == 9;
    }
    cr_assert_geq(kept_recent, 90, "only %d of the 100 newest keys kept", kept_recent);
    /* Once they have expired, new keys replace them without evictions. */
    int64_t later = T0 + FLOOD + 2 * 3600000LL;
    for (int i = 0; i < MAX / 10; i++) {
        snprintf(key, sizeof key, "late-%d", i);
        decide(s, request("r", key, lim, 1, later));
    }
    cr_assert_leq(s->ops->key_count(s), MAX);
    cr_assert_eq(rk_memory_store_evictions(s), FLOOD - MAX);
    s->ops->destroy(s);
}

typedef struct {
    rk_store_t *store;
    int thread;
} flood_t;

static void *flood_distinct_keys(void *arg) {
    flood_t *f = arg;
    rk_limit_t lim = limit_of(RK_ALG_SLIDING_WINDOW, 10, 3600000, 10);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "t%d-%d", f->thread, i);
        rk_store_req_t r = request("r", key, lim, 1, T0);
        rk_decision_t d;
        f->store->ops->decide(f->store, &r, 1, &d);
    }
    return NULL;
}

Test(memory_store, keeps_the_bound_when_threads_flood_it_together) {
    enum { MAX = 1500 };
    rk_store_t *s = rk_memory_store_new(MAX);
    flood_t f[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        f[i] = (flood_t){.store = s, .thread = i};
        pthread_create(&th[i], NULL, flood_distinct_keys, &f[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    int64_t held = s->ops->key_count(s);
    cr_assert_leq(held, MAX);
    cr_assert_geq(held, MAX - 10, "the store stays nearly full, %lld", (long long)held);
    cr_assert_eq(rk_memory_store_evictions(s), 6 * 20000 - held);
    s->ops->destroy(s);
}

Test(memory_store, a_peek_answers_as_fresh_and_creates_nothing) {
    rk_store_t *s = rk_memory_store_new(1000);
    for (int a = 0; a < RK_ALG_COUNT; a++) {
        rk_limit_t lim = limit_of((rk_algorithm_t)a, 10, 1000, 10);
        rk_decision_t d = decide(s, request("r", "never-seen", lim, 0, T0));
        cr_assert(d.allowed, "%s", rk_algorithm_name((rk_algorithm_t)a));
        cr_assert_eq(d.remaining, 10, "%s", rk_algorithm_name((rk_algorithm_t)a));
        cr_assert_eq(d.reset_ms, 0, "%s", rk_algorithm_name((rk_algorithm_t)a));
    }
    cr_assert_eq(s->ops->key_count(s), 0);
    /* A peek at an existing key sees it and changes nothing. */
    rk_limit_t lim = limit_of(RK_ALG_FIXED_WINDOW, 10, 1000, 10);
    decide(s, request("r", "seen", lim, 3, T0));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(decide(s, request("r", "seen", lim, 0, T0 + i)).remaining, 7);
    cr_assert_eq(s->ops->key_count(s), 1);
    s->ops->destroy(s);
}

Test(memory_store, reset_forgets_one_state_only) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t fw = limit_of(RK_ALG_FIXED_WINDOW, 2, 60000, 2);
    rk_limit_t log = limit_of(RK_ALG_SLIDING_LOG, 2, 60000, 2);
    for (int i = 0; i < 3; i++) {
        decide(s, request("r", "k", fw, 1, T0));
        decide(s, request("r", "k", log, 1, T0));
    }
    cr_assert(!decide(s, request("r", "k", fw, 1, T0)).allowed);
    cr_assert_eq(s->ops->reset(s, "r", "k", RK_ALG_FIXED_WINDOW), RK_OK);
    cr_assert_eq(s->ops->key_count(s), 1);
    cr_assert(decide(s, request("r", "k", fw, 1, T0)).allowed, "back to a full window");
    cr_assert(!decide(s, request("r", "k", log, 1, T0)).allowed, "the log is untouched");
    cr_assert_eq(s->ops->reset(s, "r", "k", RK_ALG_SLIDING_LOG), RK_OK);
    cr_assert(decide(s, request("r", "k", log, 1, T0)).allowed);
    cr_assert_eq(s->ops->reset(s, "r", "absent", RK_ALG_GCRA), RK_OK, "nothing to forget");
    s->ops->destroy(s);
}

static rk_decision_t acquire(rk_store_t *s, rk_limit_t lim, const char *lease_id, int64_t now) {
    rk_store_req_t r = request("conc", "k", lim, 1, now);
    r.lease_id = lease_id;
    return decide(s, r);
}

static bool release(rk_store_t *s, rk_limit_t lim, const char *lease_id, int64_t now) {
    rk_store_req_t r = request("conc", "k", lim, 0, now);
    bool released = false;
    cr_assert_eq(s->ops->release(s, &r, lease_id, &released), RK_OK);
    return released;
}

#define LEASE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LEASE_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define LEASE_C "cccccccccccccccccccccccccccccccc"

Test(memory_store, leases_are_acquired_released_and_expire) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t lim = limit_of(RK_ALG_CONCURRENCY, 2, 1000, 2);
    cr_assert(acquire(s, lim, LEASE_A, T0).allowed);
    cr_assert_eq(acquire(s, lim, LEASE_B, T0 + 10).remaining, 0);
    rk_decision_t denied = acquire(s, lim, LEASE_C, T0 + 20);
    cr_assert(!denied.allowed, "two leases held, limit 2");
    cr_assert_eq(denied.retry_after_ms, 980, "until lease A expires");

    cr_assert(release(s, lim, LEASE_A, T0 + 30), "A was live");
    cr_assert(!release(s, lim, LEASE_A, T0 + 31), "A is gone");
    cr_assert(acquire(s, lim, LEASE_C, T0 + 40).allowed, "A's place is free");

    /* An unreleased lease expires after window_ms. */
    cr_assert(!acquire(s, lim, LEASE_A, T0 + 50).allowed);
    rk_decision_t later = acquire(s, lim, LEASE_A, T0 + 1010);
    cr_assert(later.allowed, "B expired at T0+1010");
    cr_assert_eq(later.remaining, 0, "C and the new A");
    cr_assert(!release(s, lim, LEASE_B, T0 + 1020), "B had expired");

    /* When the last lease ends, the key is gone. */
    cr_assert(release(s, lim, LEASE_C, T0 + 1030));
    cr_assert(release(s, lim, LEASE_A, T0 + 1030));
    cr_assert_eq(s->ops->key_count(s), 0);
    cr_assert(!release(s, lim, LEASE_A, T0 + 1040), "no key, nothing released");

    /* Leases left to expire are freed by later requests. */
    cr_assert(acquire(s, lim, LEASE_B, T0 + 2000).allowed);
    cr_assert_eq(s->ops->key_count(s), 1);
    rk_decision_t peek = decide(s, request("conc", "k", lim, 0, T0 + 3000));
    cr_assert(peek.allowed);
    cr_assert_eq(peek.remaining, 2);
    cr_assert_eq(s->ops->key_count(s), 0);
    s->ops->destroy(s);
}

Test(memory_store, an_acquire_without_a_lease_id_still_counts) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t lim = limit_of(RK_ALG_CONCURRENCY, 2, 1000, 2);
    cr_assert(decide(s, request("conc", "k", lim, 1, T0)).allowed);
    cr_assert(decide(s, request("conc", "k", lim, 1, T0)).allowed);
    cr_assert(!decide(s, request("conc", "k", lim, 1, T0)).allowed);
    cr_assert(decide(s, request("conc", "k", lim, 1, T0 + 1000)).allowed, "they expire");
    s->ops->destroy(s);
}

Test(memory_store, uses_its_own_clock_when_the_request_has_none) {
    rk_store_t *s = rk_memory_store_new(1000);
    rk_limit_t lim = limit_of(RK_ALG_FIXED_WINDOW, 1, 3600000, 1);
    int64_t before = rk_now_ms();
    rk_decision_t d = decide(s, request("r", "k", lim, 1, -1));
    int64_t after = rk_now_ms();
    cr_assert(d.allowed);
    /* reset_ms runs to the end of the current hour of the wall clock. */
    int64_t end_of_hour = before / 3600000 * 3600000 + 3600000;
    cr_assert_geq(d.reset_ms, end_of_hour - after);
    cr_assert_leq(d.reset_ms, end_of_hour - before);
    cr_assert(!decide(s, request("r", "k", lim, 1, -1)).allowed);
    cr_assert(s->ops->healthy(s));
    cr_assert_str_eq(s->ops->name, "memory");
    s->ops->destroy(s);
}

Test(memory_store, destroy_frees_every_kind_of_state) {
    /* LeakSanitizer (tools/run-unit.sh) fails the run if anything is left. */
    rk_store_t *s = rk_memory_store_new(100000);
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        rk_algorithm_t alg = (rk_algorithm_t)(i % RK_ALG_COUNT);
        rk_store_req_t r = request("r", key, limit_of(alg, 50, 60000, 50), 1 + i % 3, T0);
        r.lease_id = LEASE_A;
        decide(s, r);
    }
    cr_assert_eq(s->ops->key_count(s), 3000);
    s->ops->destroy(s);
}

/*
 * Leases through the store against the algorithm on a set of its own:
 * acquires, releases (by id, with or without units) and peeks, with ids an
 * entry can pack (32 lowercase hex digits) and ids it cannot, so that sets
 * move between their packed and boxed forms (memory_state.h).
 */
Test(memory_store, answers_the_same_decisions_as_the_algorithm_for_concurrency) {
    /* Four ids an entry packs, then two it cannot. */
    static const char *const ids[] = {LEASE_A,         LEASE_B,
                                      LEASE_C,         "0123456789abcdef0123456789abcdef",
                                      "LEASE-not-hex", "0123456789ABCDEF"};
    rk_store_t *s = rk_memory_store_new(1000);
    const int64_t limits[] = {1, 2, 5};
    for (size_t i = 0; i < RK_ARRAY_LEN(limits); i++) {
        rk_limit_t lim = limit_of(RK_ALG_CONCURRENCY, limits[i], 1000, limits[i]);
        rk_lease_set_t set = {0};
        uint64_t rng = 777 + i;
        int64_t now = T0;
        for (int step = 0; step < 4000; step++) {
            now = next_time(&rng, now, lim.window_ms);
            uint64_t r = next_random(&rng);
            const char *id = ids[(r >> 8) % RK_ARRAY_LEN(ids)];
            int64_t cost = (int64_t)((r >> 16) % 3);
            if (r % 3 == 0) {
                rk_store_req_t req = request("conc", "k", lim, cost, now);
                bool got = false;
                cr_assert_eq(s->ops->release(s, &req, id, &got), RK_OK);
                bool want = rk_lease_release(&set, now, id, cost);
                cr_assert_eq(got, want, "step %d: release of %s", step, id);
                continue;
            }
            rk_store_req_t req = request("conc", "k", lim, cost, now);
            req.lease_id = id;
            rk_decision_t want, got = decide(s, req);
            cr_assert_eq(rk_lease_acquire(&lim, &set, now, cost, id, &want), RK_OK);
            assert_same_decision(&got, &want, step);
        }
        rk_lease_set_free(&set);
        s->ops->reset(s, "conc", "k", RK_ALG_CONCURRENCY);
    }
    s->ops->destroy(s);
}

#ifdef __SANITIZE_ADDRESS__
size_t __sanitizer_get_current_allocated_bytes(void); /* the ASan runtime's */
static size_t heap_bytes(void) {
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_bytes(void) {
    return mallinfo2().uordblks;
}
#endif

/* Heap bytes per key after `requests` requests on each of n keys of alg. */
static double heap_per_key(rk_algorithm_t alg, int requests) {
    enum { KEYS = 5000 };
    rk_store_t *s = rk_memory_store_new(KEYS);
    char key[32];
    size_t before = heap_bytes();
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "client-%d", i);
        for (int n = 0; n < requests; n++)
            cr_assert(decide(s, request("r", key, limit_of(alg, 10, 60000, 10), 1, T0)).allowed);
    }
    double per_key = (double)(heap_bytes() - before) / KEYS;
    cr_assert_eq(s->ops->key_count(s), KEYS);
    s->ops->destroy(s);
    return per_key;
}

/* A key of a request or two costs its table slot only; a busier one a box. */
Test(memory_store, small_sliding_log_and_concurrency_states_take_no_heap) {
    cr_assert_lt(heap_per_key(RK_ALG_SLIDING_LOG, 1), 1.0);
    cr_assert_lt(heap_per_key(RK_ALG_SLIDING_LOG, 2), 1.0);
    cr_assert_lt(heap_per_key(RK_ALG_CONCURRENCY, 1), 1.0);
    cr_assert_gt(heap_per_key(RK_ALG_SLIDING_LOG, 3), 40.0, "a box and its entries");
    cr_assert_gt(heap_per_key(RK_ALG_CONCURRENCY, 2), 40.0, "a box and its leases");
}
