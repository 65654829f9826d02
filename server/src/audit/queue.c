/*
 * queue.c — see queue.h.
 *
 * Cell i of the ring carries a sequence number: equal to the position a
 * producer may write at, or that position + 1 once written (and readable),
 * or position + capacity once read (and writable again, one lap later).
 */
#include "queue.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct rk_queue {
    alignas(64) _Atomic size_t enqueue_pos;
    alignas(64) _Atomic size_t dequeue_pos;
    alignas(64) size_t mask;
    size_t elem_size, cell_size;
    unsigned char *cells; /* each: _Atomic size_t seq, then the element */
};

static _Atomic size_t *cell_seq(const rk_queue_t *q, size_t pos) {
    return (_Atomic size_t *)(void *)(q->cells + (pos & q->mask) * q->cell_size);
}

static void *cell_data(const rk_queue_t *q, size_t pos) {
    return q->cells + (pos & q->mask) * q->cell_size + sizeof(_Atomic size_t);
}

rk_queue_t *rk_queue_new(size_t capacity, size_t elem_size) {
    size_t cap = 2;
    while (cap < capacity)
        cap *= 2;
    rk_queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->mask = cap - 1;
    q->elem_size = elem_size;
    q->cell_size = (sizeof(_Atomic size_t) + elem_size + 7) & ~(size_t)7;
    q->cells = malloc(cap * q->cell_size);
    if (!q->cells) {
        free(q);
        return NULL;
    }
    for (size_t i = 0; i < cap; i++)
        atomic_init(cell_seq(q, i), i);
    atomic_init(&q->enqueue_pos, 0);
    atomic_init(&q->dequeue_pos, 0);
    return q;
}

void rk_queue_free(rk_queue_t *q) {
    if (!q)
        return;
    free(q->cells);
    free(q);
}

bool rk_queue_push(rk_queue_t *q, const void *elem) {
    size_t pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    for (;;) {
        size_t seq = atomic_load_explicit(cell_seq(q, pos), memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enqueue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return false; /* full */
        } else {
            pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
        }
    }
    memcpy(cell_data(q, pos), elem, q->elem_size);
    atomic_store_explicit(cell_seq(q, pos), pos + 1, memory_order_release);
    return true;
}

bool rk_queue_pop(rk_queue_t *q, void *elem) {
    size_t pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    for (;;) {
        size_t seq = atomic_load_explicit(cell_seq(q, pos), memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)(pos + 1);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->dequeue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return false; /* empty */
        } else {
            pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
        }
    }
    memcpy(elem, cell_data(q, pos), q->elem_size);
    atomic_store_explicit(cell_seq(q, pos), pos + q->mask + 1, memory_order_release);
    return true;
}

size_t rk_queue_size(const rk_queue_t *q) {
    size_t in = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    size_t out = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    return in > out ? in - out : 0;
}
