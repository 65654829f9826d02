/*
 * keys.c — key distributions. Zipf draws by binary search in a cumulative
 * table built once (8 bytes per key), so a draw costs log2(K) steps.
 */
#include "keys.h"

#include <math.h>
#include <stdlib.h>

int lt_keys_init(lt_keys_t *k, lt_dist_t dist, long keys, double zipf_s) {
    k->dist = dist;
    k->keys = keys;
    k->zipf_cdf = NULL;
    if (dist != LT_DIST_ZIPF)
        return 0;
    k->zipf_cdf = malloc((size_t)keys * sizeof *k->zipf_cdf);
    if (!k->zipf_cdf)
        return -1;
    double sum = 0;
    for (long i = 0; i < keys; i++) {
        sum += 1.0 / pow((double)(i + 1), zipf_s);
        k->zipf_cdf[i] = sum;
    }
    for (long i = 0; i < keys; i++)
        k->zipf_cdf[i] /= sum;
    return 0;
}

void lt_keys_free(lt_keys_t *k) {
    free(k->zipf_cdf);
    k->zipf_cdf = NULL;
}

void lt_rng_seed(lt_rng_t *r, uint64_t seed) {
    /* splitmix64 of the seed, so that nearby seeds diverge at once; never 0. */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    r->state = (z ^ (z >> 31)) | 1;
}

static uint64_t rng_next(lt_rng_t *r) {
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* A uniform double in [0, 1). */
static double rng_unit(lt_rng_t *r) {
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

long lt_keys_next(const lt_keys_t *k, lt_rng_t *r) {
    switch (k->dist) {
    case LT_DIST_HOT:
        return 0;
    case LT_DIST_UNIFORM:
        return (long)(rng_next(r) % (uint64_t)k->keys);
    case LT_DIST_ZIPF: {
        double u = rng_unit(r);
        long lo = 0, hi = k->keys - 1;
        while (lo < hi) {
            long mid = lo + (hi - lo) / 2;
            if (k->zipf_cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    }
    return 0;
}
