/*
 * keys.h — which of K client keys each request names: uniform, Zipf
 * (rank r with probability proportional to 1/r^s) or always the hot one.
 */
#ifndef LT_KEYS_H
#define LT_KEYS_H

#include <stdint.h>

#include "options.h"

/* Shared, read-only once built. */
typedef struct {
    lt_dist_t dist;
    long keys;
    double *zipf_cdf; /* keys entries, for LT_DIST_ZIPF; owned */
} lt_keys_t;

/* A thread's random stream (xorshift64*). */
typedef struct {
    uint64_t state;
} lt_rng_t;

/* Builds the distribution; -1 when out of memory. */
int lt_keys_init(lt_keys_t *k, lt_dist_t dist, long keys, double zipf_s);
void lt_keys_free(lt_keys_t *k);

/* Seeds a stream; different seeds give independent-looking streams. */
void lt_rng_seed(lt_rng_t *r, uint64_t seed);

/* The index (0..keys-1) of the next request's key. */
long lt_keys_next(const lt_keys_t *k, lt_rng_t *r);

#endif
