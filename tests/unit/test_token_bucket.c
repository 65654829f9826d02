/*
 * test_token_bucket.c — the token bucket: capacity burst, refill limit/window.
 */
#include "limiter_fixture.h"

#define TB(limit, window, burst) fx_limit(RK_ALG_TOKEN_BUCKET, limit, window, burst)

Test(token_bucket, fresh_bucket_admits_burst_back_to_back_then_denies) {
    rk_limit_t lim = TB(10, 1000, 5);
    rk_cell_t cell = {0};
    for (int i = 0; i < 5; i++) {
        rk_decision_t d = fx_decide(&lim, &cell, 1000, 1);
        cr_assert(d.allowed, "request %d", i);
        cr_assert_eq(d.remaining, 4 - i);
        cr_assert_eq(d.limit, 10);
    }
    cr_assert_not(fx_decide(&lim, &cell, 1000, 1).allowed);
}

Test(token_bucket, refills_exactly_limit_per_window) {
    /* 3 per second is 3 per 1000 ms, not 3 per 999 ms. */
    rk_limit_t lim = TB(3, 1000, 3);
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, 0, 3).allowed);
    cr_assert_not(fx_try(&lim, &cell, 999, 3).allowed);
    cr_assert(fx_try(&lim, &cell, 999, 2).allowed);
    cr_assert(fx_try(&lim, &cell, 1000, 3).allowed);
    /* From empty, over the next 100 s exactly 300 pass, one every 333.33 ms. */
    int passed = 0;
    for (int64_t t = 1; t <= 100000; t++)
        passed += fx_decide(&lim, &cell, t, 1).allowed;
    cr_assert_eq(passed, 300);
}

Test(token_bucket, denies_when_bucket_empty_and_reports_retry_after) {
    rk_limit_t lim = TB(2, 1000, 2);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 5000, 2);
    rk_decision_t d = fx_decide(&lim, &cell, 5000, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.retry_after_ms, 500);
    cr_assert_eq(d.reset_ms, 1000);
    cr_assert_not(fx_try(&lim, &cell, 5499, 1).allowed);
    cr_assert(fx_try(&lim, &cell, 5500, 1).allowed);
}

Test(token_bucket, denied_request_and_peek_consume_nothing) {
    rk_limit_t lim = TB(5, 1000, 5);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 100, 4);
    rk_cell_t before = cell;
    cr_assert_not(fx_decide(&lim, &cell, 100, 2).allowed);
    rk_decision_t peek = fx_decide(&lim, &cell, 100, 0);
    cr_assert(memcmp(&before, &cell, sizeof cell) == 0);
    cr_assert(peek.allowed);
    cr_assert_eq(peek.remaining, 1);
    cr_assert(fx_decide(&lim, &cell, 100, 1).allowed);
}

Test(token_bucket, cost_above_burst_is_never_allowed_and_says_so) {
    rk_limit_t lim = TB(100, 60000, 10);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 1, 11);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 10);
    cr_assert_eq(d.retry_after_ms, 60000); /* max(reset_ms 0, window) */
    cr_assert(fx_decide(&lim, &cell, 1, 10).allowed);
}

Test(token_bucket, long_idle_refills_to_capacity_only) {
    rk_limit_t lim = TB(10, 1000, 4);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 0, 4);
    rk_decision_t d = fx_decide(&lim, &cell, 86400000LL * 365, 0);
    cr_assert_eq(d.remaining, 4);
    cr_assert_eq(d.reset_ms, 0);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 86400000LL * 365), 0);
}

Test(token_bucket, clock_going_back_is_clamped_to_full_at_minus_capacity) {
    rk_limit_t lim = TB(1, 1000, 2);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 10000, 2);
    rk_decision_t d = fx_decide(&lim, &cell, 3000, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000); /* as seen from 10000 */
    cr_assert_eq(d.reset_ms, 2000);
    cr_assert(fx_decide(&lim, &cell, 11000, 1).allowed);
}

Test(token_bucket, reset_is_the_time_until_full) {
    rk_limit_t lim = TB(4, 1000, 8);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 0, 3);
    cr_assert_eq(d.reset_ms, 750);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 0), 750);
    cr_assert_eq(fx_try(&lim, &cell, 750, 0).remaining, 8);
    cr_assert_eq(fx_try(&lim, &cell, 749, 0).remaining, 7);
}

Test(token_bucket, values_at_the_bounds_do_not_overflow) {
    rk_limit_t lim = TB(RK_LIMIT_MAX, RK_WINDOW_MS_MAX, RK_BURST_MAX);
    rk_cell_t cell = {0};
    int64_t now = RK_NOW_MS_MAX - 5;
    rk_decision_t d = fx_decide(&lim, &cell, now, RK_BURST_MAX);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_ms, RK_WINDOW_MS_MAX);
    d = fx_decide(&lim, &cell, now, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, RK_WINDOW_MS_MAX / RK_LIMIT_MAX + 1);
    d = fx_decide(&lim, &cell, now, RK_COST_MAX);
    cr_assert_not(d.allowed);
    /* The slowest refill: 1 per week, a burst of 1e7. */
    lim = TB(1, RK_WINDOW_MS_MAX, RK_BURST_MAX);
    rk_cell_t slow = {0};
    d = fx_decide(&lim, &slow, 0, RK_BURST_MAX);
    cr_assert(d.allowed);
    cr_assert_eq(d.reset_ms, RK_BURST_MAX * RK_WINDOW_MS_MAX);
    d = fx_decide(&lim, &slow, RK_WINDOW_MS_MAX * 3 + 7, 5);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 3);
    cr_assert_eq(d.retry_after_ms, 2 * RK_WINDOW_MS_MAX - 7);
}

Test(token_bucket, retry_after_and_reset_are_exact_in_random_sequences) {
    fx_random_walk(RK_ALG_TOKEN_BUCKET, 200, 200);
}
