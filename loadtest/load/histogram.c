/*
 * histogram.c — logarithmic latency buckets (see histogram.h).
 *
 * Values below 128 µs have a bucket each. Above, a value v whose highest set
 * bit is b (b >= 7) is shifted right by s = b - 6 into [64, 127]: its bucket
 * is 128 + (s - 1) * 64 + ((v >> s) - 64), and the bucket covers
 * [(v >> s) << s, ((v >> s) + 1) << s).
 */
#include "histogram.h"

/* The bucket of a value, clamped to the last bucket. */
static unsigned bucket_of(uint64_t v) {
    if (v < 2 * LT_HIST_SUB)
        return (unsigned)v;
    unsigned bit = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = bit - 6u;
    uint64_t index = 2 * LT_HIST_SUB + (uint64_t)(shift - 1) * LT_HIST_SUB + ((v >> shift) - 64);
    return index < LT_HIST_BUCKETS ? (unsigned)index : LT_HIST_BUCKETS - 1;
}

/* The highest value (µs) a bucket stands for. */
static uint64_t bucket_high(unsigned index) {
    if (index < 2 * LT_HIST_SUB)
        return index;
    unsigned shift = (index - 2 * LT_HIST_SUB) / LT_HIST_SUB + 1;
    uint64_t sub = (index - 2 * LT_HIST_SUB) % LT_HIST_SUB + 64;
    return ((sub + 1) << shift) - 1;
}

/* Owner-only increment: a relaxed load and store, no locked instruction. */
static void bump(_Atomic uint64_t *c, uint64_t by) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

void lt_hist_record(lt_hist_t *h, uint64_t value_us) {
    bump(&h->counts[bucket_of(value_us)], 1);
    bump(&h->total, 1);
    bump(&h->sum_us, value_us);
    if (value_us > atomic_load_explicit(&h->max_us, memory_order_relaxed))
        atomic_store_explicit(&h->max_us, value_us, memory_order_relaxed);
}

void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src) {
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&src->counts[i], memory_order_relaxed);
        if (c)
            bump(&dst->counts[i], c);
    }
    bump(&dst->total, atomic_load_explicit(&src->total, memory_order_relaxed));
    bump(&dst->sum_us, atomic_load_explicit(&src->sum_us, memory_order_relaxed));
    uint64_t m = atomic_load_explicit(&src->max_us, memory_order_relaxed);
    if (m > atomic_load_explicit(&dst->max_us, memory_order_relaxed))
        atomic_store_explicit(&dst->max_us, m, memory_order_relaxed);
}

void lt_hist_reset(lt_hist_t *h) {
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++)
        atomic_store_explicit(&h->counts[i], 0, memory_order_relaxed);
    atomic_store_explicit(&h->total, 0, memory_order_relaxed);
    atomic_store_explicit(&h->sum_us, 0, memory_order_relaxed);
    atomic_store_explicit(&h->max_us, 0, memory_order_relaxed);
}

uint64_t lt_hist_percentile(const lt_hist_t *h, double percentile) {
    /* The total is summed from the buckets, so that a concurrent reader
     * sees a consistent rank even while the owner records. */
    uint64_t total = 0;
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++)
        total += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)((percentile / 100.0) * (double)total + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > total)
        rank = total;
    uint64_t seen = 0;
    uint64_t max = atomic_load_explicit(&h->max_us, memory_order_relaxed);
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++) {
        seen += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (seen >= rank) {
            uint64_t high = bucket_high(i);
            return high < max ? high : max;
        }
    }
    return max;
}

double lt_hist_mean(const lt_hist_t *h) {
    uint64_t n = atomic_load_explicit(&h->total, memory_order_relaxed);
    return n ? (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / (double)n : 0.0;
}
