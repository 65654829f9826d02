/*
 * limiter_fixture.h — a fake clock and the checks every algorithm suite
 * shares: retry_after_ms and reset_ms are exact, remaining is exactly the
 * largest cost that passes, a peek or a denial changes nothing.
 */
#ifndef RK_TEST_LIMITER_FIXTURE_H
#define RK_TEST_LIMITER_FIXTURE_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

#include "limiter/limiter.h"

static inline rk_limit_t fx_limit(rk_algorithm_t alg, int64_t limit, int64_t window_ms,
                                  int64_t burst) {
    rk_limit_t lim = {
        .algorithm = alg, .limit = limit, .window_ms = window_ms, .burst = burst, .shape = false};
    return lim;
}

/* One request against a cell at now_ms. */
static inline rk_decision_t fx_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms,
                                      int64_t cost) {
    rk_decision_t d;
    rk_cell_decide(lim, cell, now_ms, cost, &d);
    return d;
}

/* The same request on a copy of the state: what would happen, nothing changes. */
static inline rk_decision_t fx_try(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms,
                                   int64_t cost) {
    rk_cell_t copy = *cell;
    return fx_decide(lim, &copy, now_ms, cost);
}

/* Capacity a fresh key shows as remaining. */
static inline int64_t fx_full(const rk_limit_t *lim) {
    bool bucket = lim->algorithm == RK_ALG_TOKEN_BUCKET || lim->algorithm == RK_ALG_GCRA ||
                  lim->algorithm == RK_ALG_LEAKY_BUCKET;
    return bucket ? lim->burst : lim->limit;
}

/*
 * Checks, for the state at now_ms (the clock not behind the state), that:
 * a peek and a denied request leave the cell as it was; remaining is the
 * largest cost that passes; a denied request passes at now + retry_after_ms
 * and not 1 ms sooner; the key is full at now + reset_ms and not 1 ms
 * sooner; the TTL equals reset_ms.
 */
static inline void fx_check_state(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms,
                                  int64_t cost) {
    rk_cell_t copy = *cell;
    rk_decision_t peek = fx_decide(lim, &copy, now_ms, 0);
    cr_assert(memcmp(&copy, cell, sizeof copy) == 0, "a peek changed the state");
    if (peek.remaining > 0)
        cr_assert(fx_try(lim, cell, now_ms, peek.remaining).allowed,
                  "remaining %" PRId64 " does not pass", peek.remaining);
    cr_assert(!fx_try(lim, cell, now_ms, peek.remaining + 1).allowed,
              "remaining %" PRId64 " + 1 passes", peek.remaining);

    cr_assert_eq(rk_cell_ttl_ms(lim, cell, now_ms), peek.reset_ms);
    if (peek.reset_ms > 0) {
        cr_assert_eq(fx_try(lim, cell, now_ms + peek.reset_ms, 0).remaining, fx_full(lim),
                     "not full after reset_ms %" PRId64, peek.reset_ms);
        cr_assert_lt(fx_try(lim, cell, now_ms + peek.reset_ms - 1, 0).remaining, fx_full(lim),
                     "full before reset_ms %" PRId64, peek.reset_ms);
    } else {
        cr_assert_eq(peek.remaining, fx_full(lim));
    }

    copy = *cell;
    rk_decision_t d = fx_decide(lim, &copy, now_ms, cost);
    if (d.allowed) {
        cr_assert_eq(d.retry_after_ms, 0);
        return;
    }
    cr_assert(memcmp(&copy, cell, sizeof copy) == 0, "a denied request changed the state");
    cr_assert_gt(d.retry_after_ms, 0);
    if (cost > fx_full(lim))
        return; /* never passes */
    cr_assert(fx_try(lim, cell, now_ms + d.retry_after_ms, cost).allowed,
              "cost %" PRId64 " denied again at now + retry_after_ms %" PRId64, cost,
              d.retry_after_ms);
    cr_assert(!fx_try(lim, cell, now_ms + d.retry_after_ms - 1, cost).allowed,
              "cost %" PRId64 " passes before retry_after_ms %" PRId64, cost, d.retry_after_ms);
}

static uint64_t fx_rng = 88172645463325252ULL;

static inline int64_t fx_rand(int64_t lo, int64_t hi) {
    fx_rng ^= fx_rng << 13;
    fx_rng ^= fx_rng >> 7;
    fx_rng ^= fx_rng << 17;
    return lo + (int64_t)(fx_rng % (uint64_t)(hi - lo + 1));
}

/*
 * Random walks with small limits and a clock that only moves forward,
 * checking fx_check_state before every step.
 */
static inline void fx_random_walk(rk_algorithm_t alg, int walks, int steps) {
    for (int w = 0; w < walks; w++) {
        int64_t limit = fx_rand(1, 8), window = fx_rand(1, 3) == 1 ? fx_rand(1, 7) : 1000;
        rk_limit_t lim = fx_limit(alg, limit, window, fx_rand(1, 3) == 1 ? fx_rand(1, 12) : limit);
        lim.shape = fx_rand(0, 1);
        rk_cell_t cell = {0};
        int64_t now = fx_rand(0, 100000);
        for (int i = 0; i < steps; i++) {
            int64_t cost = fx_rand(0, 9) == 0 ? 0 : fx_rand(1, 4) == 1 ? fx_rand(1, 14) : 1;
            fx_check_state(&lim, &cell, now, cost);
            fx_decide(&lim, &cell, now, cost);
            now += fx_rand(0, 2) == 0 ? 0 : fx_rand(0, window / 2 + 1);
        }
    }
}

#endif
