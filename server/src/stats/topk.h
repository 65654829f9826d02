/*
 * topk.h — a bounded map of "rule\tkey" to a count of denials, and the
 * most denied keys of it: the embedded store's top keys, and the deltas
 * a second adds to Redis.
 *
 * Pure data structure, no locking. Past max_len distinct keys, new keys are
 * refused (counted nowhere) while known keys still count: an attack from
 * many addresses cannot grow it without bound.
 */
#ifndef RK_STATS_TOPK_H
#define RK_STATS_TOPK_H

#include "../common.h"

typedef struct {
    char *key; /* "rule\tkey", owned by the map */
    uint64_t count;
} rk_topk_entry_t;

typedef struct {
    rk_topk_entry_t *slots; /* open addressing; NULL key = empty */
    size_t cap, len, max_len;
} rk_topk_t;

/* An empty map holding at most max_len keys (allocates on first add). */
void rk_topk_init(rk_topk_t *m, size_t max_len);
void rk_topk_free(rk_topk_t *m);

/* Adds n to key (len bytes); false when the key is new and the map is full, or out of memory. */
bool rk_topk_add(rk_topk_t *m, const char *key, size_t len, uint64_t n);

/*
 * Writes the k largest counts among keys starting with prefix ("" for all)
 * into out, largest first (ties: smaller key first); answers how many.
 * out's keys point into m and live as long as it.
 */
size_t rk_topk_top(const rk_topk_t *m, const char *prefix, rk_topk_entry_t *out, size_t k);

#endif
