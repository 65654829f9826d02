/*
 * histogram.h — a latency histogram in the manner of HdrHistogram:
 * logarithmic buckets with 64 linear sub-buckets per power of two, so any
 * recorded value is known to within 1/64 (about 1.6 %), from 1 µs to about
 * 19 hours, in a fixed 16 KiB with no allocation.
 *
 * One thread records into a histogram; any thread may read it at the same
 * time (every count is a relaxed atomic, written only by its owner), which
 * is what the once-a-second progress line does.
 */
#ifndef LT_HISTOGRAM_H
#define LT_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define LT_HIST_SUB 64       /* linear sub-buckets per power of two */
#define LT_HIST_BUCKETS 2048 /* 128 exact values, then 30 powers of two of 64 */

typedef struct {
    _Atomic uint64_t counts[LT_HIST_BUCKETS];
    _Atomic uint64_t total;
    _Atomic uint64_t max_us;
    _Atomic uint64_t sum_us;
} lt_hist_t;

/* Records one latency of value_us microseconds. Owner thread only. */
void lt_hist_record(lt_hist_t *h, uint64_t value_us);

/* Adds every count of src into dst (dst must not be recorded into meanwhile). */
void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src);

/* Clears every count (dst must not be recorded into meanwhile). */
void lt_hist_reset(lt_hist_t *h);

/*
 * The value (µs) below or at which `percentile` percent of the recorded
 * values lie, as the highest value of its bucket (so never understated);
 * 0 when the histogram is empty.
 */
uint64_t lt_hist_percentile(const lt_hist_t *h, double percentile);

/* Mean of the recorded values, µs; 0 when empty. */
double lt_hist_mean(const lt_hist_t *h);

#endif
