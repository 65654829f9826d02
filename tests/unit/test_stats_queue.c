/*
 * test_stats_queue.c — the denial log's bounded queue: first in, first
 * out; a full queue refuses at once; many producers lose nothing.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "audit/queue.h"

Test(stats_queue, keeps_order_and_refuses_when_full) {
    rk_queue_t *q = rk_queue_new(4, sizeof(int));
    for (int i = 0; i < 4; i++)
        cr_assert(rk_queue_push(q, &i));
    int x = 99;
    cr_assert_not(rk_queue_push(q, &x), "a fifth element does not fit");
    cr_assert_eq(rk_queue_size(q), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert(rk_queue_pop(q, &x));
        cr_assert_eq(x, i);
    }
    cr_assert_not(rk_queue_pop(q, &x));
    cr_assert(rk_queue_push(q, &x), "room again after popping");
    rk_queue_free(q);
}

#define PRODUCERS 4
#define PER_PRODUCER 20000

static void *produce(void *arg) {
    rk_queue_t *q = arg;
    static _Atomic int next;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int v = next++;
        while (!rk_queue_push(q, &v))
            ;
    }
    return NULL;
}

Test(stats_queue, concurrent_producers_lose_and_duplicate_nothing) {
    rk_queue_t *q = rk_queue_new(1024, sizeof(int));
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, produce, q);
    static unsigned char seen[PRODUCERS * PER_PRODUCER];
    int got = 0, v;
    while (got < PRODUCERS * PER_PRODUCER) {
        if (rk_queue_pop(q, &v)) {
            cr_assert(v >= 0 && v < PRODUCERS * PER_PRODUCER);
            cr_assert_eq(seen[v], 0, "value %d popped twice", v);
            seen[v] = 1;
            got++;
        }
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    cr_assert_not(rk_queue_pop(q, &v));
    rk_queue_free(q);
}
