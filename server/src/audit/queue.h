/*
 * queue.h — a bounded multi-producer queue of fixed-size elements that
 * never blocks a producer: when it is full, push answers false at once.
 * (D. Vyukov's bounded MPMC queue: one sequence number per cell, one
 * compare-and-swap per push, no lock, no allocation after creation.)
 */
#ifndef RK_AUDIT_QUEUE_H
#define RK_AUDIT_QUEUE_H

#include "../common.h"

typedef struct rk_queue rk_queue_t;

/* A queue of capacity elements (rounded up to a power of two) of elem_size bytes; NULL when out of
 * memory. */
rk_queue_t *rk_queue_new(size_t capacity, size_t elem_size);
void rk_queue_free(rk_queue_t *q);

/* Copies elem in; false when the queue is full (nothing written). */
bool rk_queue_push(rk_queue_t *q, const void *elem);

/* Copies the oldest element out; false when the queue is empty. */
bool rk_queue_pop(rk_queue_t *q, void *elem);

/* About how many elements wait (exact when no push or pop is under way). */
size_t rk_queue_size(const rk_queue_t *q);

#endif
