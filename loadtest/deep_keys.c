/*
 * deep_keys.c — what a check costs the embedded store when its keys hold
 * many entries.
 *
 * sliding_log keeps an entry per admitted unit and concurrency a lease
 * per acquisition not yet released, so their keys grow with the traffic
 * (make bench's HTTP rows release every lease they get). For each of
 * them, and for token_bucket (one fixed state per key, the reference), it
 * fills KEYS keys with DEPTH allowed checks each, then times random checks
 * over those keys, without HTTP, in ROUNDS rounds that take turns between
 * the algorithms, and prints the median nanoseconds per check. Every check
 * passes a fresh lease id, so that the three do the same work around the
 * algorithm.
 *
 * Usage: deep_keys [depth]   (default 300)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "store/store.h"

#define KEYS 10000
#define CHECKS 1000000
#define ROUNDS 3
#define NOW_MS 1700000000000LL

static const rk_algorithm_t ALGS[] = {RK_ALG_TOKEN_BUCKET, RK_ALG_SLIDING_LOG, RK_ALG_CONCURRENCY};
#define NALGS (sizeof ALGS / sizeof *ALGS)

typedef struct {
    rk_store_t *store;
    rk_limit_t limit;
    uint64_t checks; /* made so far: the clock and the lease ids */
} bench_t;

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One allowed check of key k; the clock moves 1 ms every 100 checks. */
static int check(bench_t *b, unsigned k) {
    char key[16] = "user-", lease[RK_LEASE_ID_LEN + 1];
    for (int i = 9; i >= 5; i--, k /= 10)
        key[i] = (char)('0' + k % 10);
    uint64_t id[2] = {b->checks, 0}; /* a fresh 32-digit id (snprintf would cost more) */
    rk_hex(id, sizeof id, lease);
    rk_store_req_t r = {.rule_id = "bench",
                        .key = key,
                        .limit = b->limit,
                        .cost = 1,
                        .now_ms = NOW_MS + (int64_t)(b->checks++ / 100),
                        .lease_id = lease};
    rk_decision_t d;
    return b->store->ops->decide(b->store, &r, 1, &d) == RK_OK && d.allowed ? 0 : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long depth = argc > 1 ? strtol(argv[1], NULL, 10) : 300;
    if (depth <= 0 || depth > 5000) { /* + the rounds' 300: under every bound */
        fprintf(stderr, "usage: %s [depth 1..5000]\n", argv[0]);
        return 2;
    }
    bench_t b[NALGS];
    for (size_t a = 0; a < NALGS; a++) {
        /* make bench's rules: an hour's window, limits at the algorithms'
         * bounds, which the fill and the rounds stay under. */
        int64_t limit = ALGS[a] == RK_ALG_SLIDING_LOG   ? RK_SLIDING_LOG_LIMIT_MAX
                        : ALGS[a] == RK_ALG_CONCURRENCY ? RK_CONCURRENCY_LIMIT_MAX
                                                        : 1000000;
        b[a] = (bench_t){
            .store = rk_memory_store_new(KEYS * 2),
            .limit = {.algorithm = ALGS[a], .limit = limit, .window_ms = 3600000, .burst = limit}};
        if (!b[a].store)
            return 1;
        for (long i = 0; i < KEYS * depth; i++)
            if (check(&b[a], (unsigned)(i % KEYS)) != 0)
                return 1;
    }
    double ns[NALGS][ROUNDS];
    unsigned seed = 1;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t a = 0; a < NALGS; a++) {
            double start = mono_seconds();
            for (long i = 0; i < CHECKS; i++) {
                seed = seed * 1103515245u + 12345u;
                if (check(&b[a], (seed >> 8) % KEYS) != 0)
                    return 1;
            }
            ns[a][round] = (mono_seconds() - start) * 1e9 / CHECKS;
        }
    }
    printf("%d keys, %ld allowed checks each before timing\n", KEYS, depth);
    for (size_t a = 0; a < NALGS; a++) {
        qsort(ns[a], ROUNDS, sizeof ns[a][0], cmp_double);
        printf("%-13s %6.0f ns/check\n", rk_algorithm_name(ALGS[a]), ns[a][ROUNDS / 2]);
        b[a].store->ops->destroy(b[a].store);
    }
    return 0;
}
