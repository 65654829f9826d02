/*
 * memory_per_key.c — what one key costs in the embedded store.
 *
 * For each algorithm, in a child process of its own (so that one
 * measurement's freed memory cannot hide in the next one's), it creates a
 * memory store, makes CHECKS allowed requests on each of KEYS distinct keys
 * (concurrency: each acquiring a lease of its own), and prints the growth
 * of the resident set (/proc/self/statm) divided by the number of keys:
 * every overhead included, table slack and shards too. It also prints the
 * mean time of those requests.
 *
 * Usage: memory_per_key [keys [checks]]   (default 1000000 keys, 1 check)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define DEFAULT_KEYS 1000000L
#define NOW_MS 1700000000000LL

/* Resident set size of this process, in bytes. */
static long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Makes checks requests on each of keys keys of one algorithm and prints one line; 0 on success. */
static int measure(rk_algorithm_t alg, long keys, long checks) {
    rk_limit_t lim = {.algorithm = alg, .limit = 100, .window_ms = 60000, .burst = 100};
    char key[32], lease[] = "0123456789abcdef0123456789ab0000";
    long before = resident_bytes();
    rk_store_t *s = rk_memory_store_new((size_t)keys * 2);
    if (!s || before < 0)
        return 1;
    double start = mono_seconds();
    for (long i = 0; i < keys; i++) {
        snprintf(key, sizeof key, "user-%07ld", i);
        for (long c = 0; c < checks; c++) {
            snprintf(lease + 28, 5, "%04lx", (unsigned long)c);
            rk_store_req_t r = {.rule_id = "bench",
                                .key = key,
                                .limit = lim,
                                .cost = 1,
                                .now_ms = NOW_MS,
                                .lease_id = lease};
            rk_decision_t d;
            if (s->ops->decide(s, &r, 1, &d) != RK_OK || !d.allowed)
                return 1;
        }
    }
    double elapsed = mono_seconds() - start;
    long after = resident_bytes();
    if (s->ops->key_count(s) != keys)
        return 1;
    printf("%-15s %9ld keys  %3ld checks/key  %7.1f bytes/key  %6.0f ns/check\n",
           rk_algorithm_name(alg), keys, checks, (double)(after - before) / (double)keys,
           elapsed * 1e9 / (double)(keys * checks));
    s->ops->destroy(s);
    return 0;
}

int main(int argc, char **argv) {
    long keys = argc > 1 ? strtol(argv[1], NULL, 10) : DEFAULT_KEYS;
    long checks = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    if (keys <= 0 || keys > 100000000 || checks <= 0 || checks > 100) {
        fprintf(stderr, "usage: %s [keys [checks]]   (keys up to 1e8, checks 1..100)\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (int alg = 0; alg < RK_ALG_COUNT; alg++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            int rc = measure((rk_algorithm_t)alg, keys, checks);
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: measurement failed\n", rk_algorithm_name((rk_algorithm_t)alg));
            failed = 1;
        }
    }
    return failed;
}
