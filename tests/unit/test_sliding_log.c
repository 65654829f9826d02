/*
 * test_sliding_log.c — the exact sliding window, one timestamp per unit.
 */
#include "limiter_fixture.h"

#include <stdlib.h>

#define SL(limit, window) fx_limit(RK_ALG_SLIDING_LOG, limit, window, limit)

static rk_decision_t log_decide(const rk_limit_t *lim, rk_log_t *log, int64_t now, int64_t cost) {
    rk_decision_t d;
    cr_assert_eq(rk_log_decide(lim, log, now, cost, &d), RK_OK);
    return d;
}

/* A deep copy, to try a request without touching the original. */
static rk_log_t log_copy(const rk_log_t *log) {
    rk_log_t c = *log;
    c.ts = malloc(sizeof *c.ts * (log->cap ? log->cap : 1));
    cr_assert_not_null(c.ts);
    if (log->cap)
        memcpy(c.ts, log->ts, sizeof *c.ts * log->cap);
    return c;
}

static rk_decision_t log_try(const rk_limit_t *lim, const rk_log_t *log, int64_t now,
                             int64_t cost) {
    rk_log_t c = log_copy(log);
    rk_decision_t d = log_decide(lim, &c, now, cost);
    rk_log_free(&c);
    return d;
}

static bool log_same(const rk_log_t *a, const rk_log_t *b) {
    if (a->len != b->len)
        return false;
    for (uint32_t i = 0; i < a->len; i++)
        if (a->ts[(a->head + i) % a->cap] != b->ts[(b->head + i) % b->cap])
            return false;
    return true;
}

Test(sliding_log, counts_exactly_the_units_of_the_last_window) {
    rk_limit_t lim = SL(3, 1000);
    rk_log_t log = {0};
    cr_assert(log_decide(&lim, &log, 0, 1).allowed);
    cr_assert(log_decide(&lim, &log, 400, 2).allowed);
    rk_decision_t d = log_decide(&lim, &log, 999, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1); /* the entry of 0 expires at 1000 */
    cr_assert_eq(d.reset_ms, 401);     /* the entries of 400 expire at 1400 */
    d = log_decide(&lim, &log, 1000, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    d = log_decide(&lim, &log, 1000, 2);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 400); /* both units of 400 must go */
    rk_log_free(&log);
}

Test(sliding_log, entries_left_after_a_partial_expiry_all_count) {
    rk_limit_t lim = SL(3, 1000);
    rk_log_t log = {0};
    for (int t = 0; t <= 20; t += 10)
        cr_assert(log_decide(&lim, &log, t, 1).allowed);
    cr_assert(log_decide(&lim, &log, 1005, 1).allowed, "the entry of 0 has expired");
    rk_decision_t d = log_decide(&lim, &log, 1009, 1); /* 10, 20 and 1005 are live */
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1);
    cr_assert(log_decide(&lim, &log, 1010, 1).allowed);
    rk_log_free(&log);
}

Test(sliding_log, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = SL(2, 100);
    rk_log_t log = {0};
    log_decide(&lim, &log, 10, 2);
    rk_log_t before = log_copy(&log);
    cr_assert_not(log_decide(&lim, &log, 50, 1).allowed);
    rk_decision_t peek = log_decide(&lim, &log, 500, 0);
    cr_assert(log_same(&before, &log));
    cr_assert_eq(peek.remaining, 2);
    cr_assert_eq(peek.reset_ms, 0);
    rk_log_free(&before);
    rk_log_free(&log);
}

Test(sliding_log, cost_larger_than_the_limit_never_passes) {
    rk_limit_t lim = SL(5, 1000);
    rk_log_t log = {0};
    rk_decision_t d = log_decide(&lim, &log, 0, 6);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000);
    cr_assert_eq(log.len, 0);
    d = log_decide(&lim, &log, 0, RK_COST_MAX);
    cr_assert_not(d.allowed);
    rk_log_free(&log);
}

Test(sliding_log, clock_going_back_is_clamped_to_the_newest_entry) {
    rk_limit_t lim = SL(1, 1000);
    rk_log_t log = {0};
    log_decide(&lim, &log, 5000, 1);
    rk_decision_t d = log_decide(&lim, &log, 100, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000);
    cr_assert_eq(rk_log_ttl_ms(&lim, &log, 100), 1000);
    rk_log_free(&log);
}

Test(sliding_log, long_idle_drops_every_entry_and_the_log_stays_bounded) {
    rk_limit_t lim = SL(50, 10);
    rk_log_t log = {0};
    for (int64_t t = 0; t < 100000; t += 3)
        log_decide(&lim, &log, t, 7);
    cr_assert_leq(log.len, 50);
    cr_assert_eq(rk_log_ttl_ms(&lim, &log, 200000), 0);
    cr_assert_eq(log_decide(&lim, &log, 200000, 0).remaining, 50);
    rk_log_free(&log);
}

Test(sliding_log, the_largest_limit_holds_one_entry_per_unit) {
    rk_limit_t lim = SL(RK_SLIDING_LOG_LIMIT_MAX, RK_WINDOW_MS_MAX);
    rk_log_t log = {0};
    cr_assert(log_decide(&lim, &log, RK_NOW_MS_MAX, RK_SLIDING_LOG_LIMIT_MAX).allowed);
    cr_assert_eq(log.len, RK_SLIDING_LOG_LIMIT_MAX);
    rk_decision_t d = log_decide(&lim, &log, RK_NOW_MS_MAX, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, RK_WINDOW_MS_MAX);
    rk_log_free(&log);
}

Test(sliding_log, any_number_of_expired_entries_is_found_exactly) {
    /* The search for the first live entry gallops from the oldest: every
     * count of expired entries, from none to all, across the ring's wrap. */
    enum { N = 2000, W = 10000 };
    rk_limit_t lim = SL(N, W);
    rk_log_t log = {0};
    for (int t = 0; t < N; t++)
        log_decide(&lim, &log, t, 1);
    const int base = 2 * W; /* every entry above has expired: the ring wraps */
    for (int i = 0; i < N; i++)
        cr_assert(log_decide(&lim, &log, base + i, 1).allowed, "i=%d", i);
    cr_assert_neq(log.head, 0);
    for (int k = 0; k <= N; k++) {
        rk_decision_t d = log_try(&lim, &log, base + W + k - 1, 0);
        cr_assert_eq(d.remaining, k, "%d entries expired", k);
        if (k < N)
            cr_assert_eq(log_try(&lim, &log, base + W + k - 1, k + 1).retry_after_ms, 1);
    }
    rk_log_free(&log);
}

Test(sliding_log, retry_after_and_reset_are_exact_in_random_sequences) {
    for (int walk = 0; walk < 150; walk++) {
        rk_limit_t lim = SL(fx_rand(1, 8), fx_rand(1, 3) == 1 ? fx_rand(1, 7) : 1000);
        rk_log_t log = {0};
        int64_t now = fx_rand(0, 100000);
        for (int i = 0; i < 150; i++) {
            int64_t cost = fx_rand(0, 9) == 0 ? 0 : fx_rand(1, 4) == 1 ? fx_rand(1, 10) : 1;
            rk_decision_t peek = log_try(&lim, &log, now, 0);
            cr_assert_eq(rk_log_ttl_ms(&lim, &log, now), peek.reset_ms);
            if (peek.remaining > 0)
                cr_assert(log_try(&lim, &log, now, peek.remaining).allowed);
            cr_assert_not(log_try(&lim, &log, now, peek.remaining + 1).allowed);
            if (peek.reset_ms > 0) {
                cr_assert_eq(log_try(&lim, &log, now + peek.reset_ms, 0).remaining, lim.limit);
                cr_assert_lt(log_try(&lim, &log, now + peek.reset_ms - 1, 0).remaining, lim.limit);
            }
            rk_decision_t d = log_try(&lim, &log, now, cost);
            if (!d.allowed && cost <= lim.limit) {
                cr_assert(log_try(&lim, &log, now + d.retry_after_ms, cost).allowed);
                cr_assert_not(log_try(&lim, &log, now + d.retry_after_ms - 1, cost).allowed);
            }
            log_decide(&lim, &log, now, cost);
            now += fx_rand(0, 2) == 0 ? 0 : fx_rand(0, lim.window_ms / 2 + 1);
        }
        rk_log_free(&log);
    }
}
