/*
 * test_leaky_bucket.c — level leaks limit/window; capacity burst; shaping.
 */
#include "limiter_fixture.h"

static rk_limit_t lb(int64_t limit, int64_t window, int64_t burst, bool shape) {
    rk_limit_t lim = fx_limit(RK_ALG_LEAKY_BUCKET, limit, window, burst);
    lim.shape = shape;
    return lim;
}

Test(leaky_bucket, admits_until_the_bucket_is_full_then_leaks_at_the_rate) {
    rk_limit_t lim = lb(2, 1000, 3, false); /* leaks one every 500 ms */
    rk_cell_t cell = {0};
    for (int i = 0; i < 3; i++) {
        rk_decision_t d = fx_decide(&lim, &cell, 0, 1);
        cr_assert(d.allowed);
        cr_assert_eq(d.delay_ms, 0);
    }
    rk_decision_t d = fx_decide(&lim, &cell, 0, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 500);
    cr_assert_eq(d.reset_ms, 1500);
    cr_assert_not(fx_decide(&lim, &cell, 499, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 500, 1).allowed);
}

Test(leaky_bucket, shaping_delays_each_request_behind_the_queue) {
    rk_limit_t lim = lb(4, 1000, 4, true); /* one every 250 ms */
    rk_cell_t cell = {0};
    for (int64_t i = 0; i < 4; i++) {
        rk_decision_t d = fx_decide(&lim, &cell, 1000, 1);
        cr_assert(d.allowed);
        cr_assert_eq(d.delay_ms, 250 * i);
    }
    rk_decision_t d = fx_decide(&lim, &cell, 1000, 1);
    cr_assert_not(d.allowed, "the queue is full");
    cr_assert_eq(d.delay_ms, 0);
    cr_assert_eq(d.retry_after_ms, 250);
    d = fx_decide(&lim, &cell, 1100, 1);
    cr_assert_not(d.allowed);
    d = fx_decide(&lim, &cell, 1250, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.delay_ms, 750);
}

Test(leaky_bucket, shaping_admits_the_same_requests_as_without) {
    for (int walk = 0; walk < 100; walk++) {
        int64_t limit = fx_rand(1, 9), window = fx_rand(1, 2000), burst = fx_rand(1, 9);
        rk_limit_t a = lb(limit, window, burst, true), b = lb(limit, window, burst, false);
        rk_cell_t ca = {0}, cb = {0};
        int64_t now = 0;
        for (int i = 0; i < 100; i++) {
            int64_t cost = fx_rand(0, 3);
            rk_decision_t da = fx_decide(&a, &ca, now, cost), db = fx_decide(&b, &cb, now, cost);
            cr_assert_eq(da.allowed, db.allowed);
            cr_assert_eq(da.remaining, db.remaining);
            cr_assert_eq(db.delay_ms, 0);
            now += fx_rand(0, window / 3 + 1);
        }
    }
}

Test(leaky_bucket, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = lb(1, 1000, 2, true);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 0, 2);
    rk_cell_t before = cell;
    cr_assert_not(fx_decide(&lim, &cell, 10, 1).allowed);
    rk_decision_t peek = fx_decide(&lim, &cell, 10, 0);
    cr_assert(memcmp(&before, &cell, sizeof cell) == 0);
    cr_assert_eq(peek.remaining, 0);
    cr_assert_eq(peek.delay_ms, 1990); /* a request now would wait for the queue */
}

Test(leaky_bucket, cost_above_capacity_never_passes) {
    rk_limit_t lim = lb(1, 1000, 2, false);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 0, 3);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000);
}

Test(leaky_bucket, clock_going_back_is_clamped_and_long_idle_empties) {
    rk_limit_t lim = lb(1, 1000, 2, false);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 50000, 2);
    rk_decision_t d = fx_decide(&lim, &cell, 10, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 50000), 2000);
    cr_assert_eq(fx_decide(&lim, &cell, 50000 + 86400000LL * 7, 0).remaining, 2);
}

Test(leaky_bucket, values_at_the_bounds_do_not_overflow) {
    rk_limit_t lim = lb(1, RK_WINDOW_MS_MAX, RK_BURST_MAX, true);
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, RK_NOW_MS_MAX, RK_BURST_MAX - 1).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, RK_NOW_MS_MAX, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.delay_ms, (RK_BURST_MAX - 1) * RK_WINDOW_MS_MAX);
    d = fx_decide(&lim, &cell, RK_NOW_MS_MAX + 5, 1); /* now is bounded */
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, RK_WINDOW_MS_MAX);
    cr_assert_eq(d.reset_ms, RK_BURST_MAX * RK_WINDOW_MS_MAX);
}

Test(leaky_bucket, retry_after_and_reset_are_exact_in_random_sequences) {
    fx_random_walk(RK_ALG_LEAKY_BUCKET, 200, 200);
}
