/*
 * ring.c — see ring.h.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

size_t rk_ring_index(int64_t t) {
    int64_t m = t % RK_RING_SECONDS;
    return (size_t)(m < 0 ? m + RK_RING_SECONDS : m);
}

static int by_slot(const void *a, const void *b) {
    uint32_t x = ((const rk_ring_entry_t *)a)->slot, y = ((const rk_ring_entry_t *)b)->slot;
    return (x > y) - (x < y);
}

rk_status_t rk_ring_put(rk_ring_t *r, int64_t t, const rk_ring_entry_t *entries, size_t len) {
    rk_ring_second_t *s = &r->sec[rk_ring_index(t)];
    free(s->entries);
    memset(s, 0, sizeof *s);
    s->t = t;
    if (len == 0)
        return RK_OK;
    s->entries = malloc(len * sizeof *entries);
    if (!s->entries)
        return RK_ERR;
    memcpy(s->entries, entries, len * sizeof *entries);
    qsort(s->entries, len, sizeof *entries, by_slot);
    /* merge duplicates in place */
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (out > 0 && s->entries[out - 1].slot == s->entries[i].slot) {
            for (int f = 0; f < RK_STAT_FIELDS; f++)
                s->entries[out - 1].n[f] += s->entries[i].n[f];
        } else {
            s->entries[out++] = s->entries[i];
        }
    }
    s->len = out;
    for (size_t i = 0; i < out; i++) {
        uint64_t *sum = s->entries[i].slot == RK_RING_CHECKS ? s->checks : s->totals;
        for (int f = 0; f < RK_STAT_FIELDS; f++)
            sum[f] += s->entries[i].n[f];
    }
    return RK_OK;
}

const rk_ring_second_t *rk_ring_get(const rk_ring_t *r, int64_t t) {
    const rk_ring_second_t *s = &r->sec[rk_ring_index(t)];
    return s->t == t && t != 0 ? s : NULL;
}

void rk_ring_sum(const rk_ring_t *r, int64_t from, int64_t to, uint64_t totals[RK_STAT_FIELDS],
                 uint64_t (*per_slot)[RK_STAT_FIELDS], size_t nslots,
                 uint64_t checks[RK_STAT_FIELDS]) {
    /* More than the ring holds cannot add anything: clamp the range. */
    if (to - from >= RK_RING_SECONDS)
        from = to - RK_RING_SECONDS + 1;
    for (int64_t t = from; t <= to; t++) {
        const rk_ring_second_t *s = rk_ring_get(r, t);
        if (!s)
            continue;
        for (int f = 0; f < RK_STAT_FIELDS; f++) {
            totals[f] += s->totals[f];
            if (checks)
                checks[f] += s->checks[f];
        }
        if (!per_slot)
            continue;
        for (size_t i = 0; i < s->len; i++) {
            if (s->entries[i].slot >= nslots)
                continue;
            for (int f = 0; f < RK_STAT_FIELDS; f++)
                per_slot[s->entries[i].slot][f] += s->entries[i].n[f];
        }
    }
}

void rk_ring_counts(const rk_ring_t *r, int64_t t, long slot, uint64_t out[RK_STAT_FIELDS]) {
    memset(out, 0, RK_STAT_FIELDS * sizeof *out);
    const rk_ring_second_t *s = rk_ring_get(r, t);
    if (!s)
        return;
    if (slot < 0 || slot == (long)RK_RING_CHECKS) {
        memcpy(out, slot < 0 ? s->totals : s->checks, RK_STAT_FIELDS * sizeof *out);
        return;
    }
    /* entries are sorted by slot */
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->entries[mid].slot < (uint32_t)slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->len && s->entries[lo].slot == (uint32_t)slot)
        memcpy(out, s->entries[lo].n, RK_STAT_FIELDS * sizeof *out);
}

void rk_ring_drop_slot(rk_ring_t *r, uint32_t slot) {
    for (size_t i = 0; i < RK_RING_SECONDS; i++) {
        rk_ring_second_t *s = &r->sec[i];
        size_t out = 0;
        for (size_t k = 0; k < s->len; k++)
            if (s->entries[k].slot != slot)
                s->entries[out++] = s->entries[k];
        s->len = out;
    }
}

void rk_ring_clear(rk_ring_t *r) {
    for (size_t i = 0; i < RK_RING_SECONDS; i++) {
        free(r->sec[i].entries);
        memset(&r->sec[i], 0, sizeof r->sec[i]);
    }
}
