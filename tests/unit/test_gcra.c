/*
 * test_gcra.c — GCRA: T = window/limit, tau = T*burst, burst as in the token bucket.
 */
#include "limiter_fixture.h"

#define GCRA(limit, window, burst) fx_limit(RK_ALG_GCRA, limit, window, burst)

Test(gcra, fresh_key_admits_exactly_burst_back_to_back_like_the_token_bucket) {
    for (int64_t burst = 1; burst <= 20; burst++) {
        rk_limit_t g = GCRA(7, 1000, burst);
        rk_limit_t t = fx_limit(RK_ALG_TOKEN_BUCKET, 7, 1000, burst);
        rk_cell_t gc = {0}, tc = {0};
        int g_passed = 0, t_passed = 0;
        for (int i = 0; i < 40; i++) {
            g_passed += fx_decide(&g, &gc, 5000, 1).allowed;
            t_passed += fx_decide(&t, &tc, 5000, 1).allowed;
        }
        cr_assert_eq(g_passed, burst);
        cr_assert_eq(t_passed, burst);
    }
}

Test(gcra, then_admits_one_per_emission_interval) {
    rk_limit_t lim = GCRA(4, 1000, 2); /* T = 250 ms */
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, 0, 2).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, 0, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 250);
    cr_assert_eq(d.reset_ms, 500);
    cr_assert_not(fx_decide(&lim, &cell, 249, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 250, 1).allowed);
    cr_assert_not(fx_decide(&lim, &cell, 250, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 500, 1).allowed);
}

Test(gcra, fractional_emission_interval_keeps_the_exact_rate) {
    rk_limit_t lim = GCRA(3, 1000, 1); /* T = 333.33 ms */
    rk_cell_t cell = {0};
    int passed = 0;
    for (int64_t t = 0; t < 60000; t++)
        passed += fx_decide(&lim, &cell, t, 1).allowed;
    cr_assert_eq(passed, 180);
}

Test(gcra, decides_as_the_token_bucket_for_a_clock_that_never_runs_back) {
    for (int walk = 0; walk < 300; walk++) {
        int64_t limit = fx_rand(1, 50), window = fx_rand(1, 5000), burst = fx_rand(1, 30);
        rk_limit_t g = GCRA(limit, window, burst);
        rk_limit_t t = fx_limit(RK_ALG_TOKEN_BUCKET, limit, window, burst);
        rk_cell_t gc = {0}, tc = {0};
        int64_t now = fx_rand(0, 1000000);
        for (int i = 0; i < 100; i++) {
            int64_t cost = fx_rand(0, 4) == 0 ? fx_rand(0, 40) : 1;
            rk_decision_t a = fx_decide(&g, &gc, now, cost), b = fx_decide(&t, &tc, now, cost);
            cr_assert(a.allowed == b.allowed && a.remaining == b.remaining &&
                          a.reset_ms == b.reset_ms && a.retry_after_ms == b.retry_after_ms,
                      "walk %d step %d differs", walk, i);
            cr_assert_eq(rk_cell_ttl_ms(&g, &gc, now), rk_cell_ttl_ms(&t, &tc, now));
            now += fx_rand(0, 1) ? 0 : fx_rand(0, window);
        }
    }
}

Test(gcra, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = GCRA(10, 1000, 3);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 42, 3);
    rk_cell_t before = cell;
    cr_assert_not(fx_decide(&lim, &cell, 42, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 42, 0).allowed);
    cr_assert(memcmp(&before, &cell, sizeof cell) == 0);
}

Test(gcra, cost_above_burst_is_never_allowed) {
    rk_limit_t lim = GCRA(10, 1000, 3);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 0, 4);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 3);
    cr_assert_eq(d.retry_after_ms, 1000);
}

Test(gcra, clock_going_back_is_clamped_to_tat_minus_tau) {
    rk_limit_t lim = GCRA(1, 1000, 2);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 100000, 2); /* tat = 102000 */
    rk_decision_t d = fx_decide(&lim, &cell, 0, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.reset_ms, 2000); /* as seen from 100000, not 102 s */
    cr_assert_eq(d.retry_after_ms, 1000);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 0), 2000);
}

Test(gcra, long_idle_is_a_fresh_key) {
    rk_limit_t lim = GCRA(5, 1000, 5);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 0, 5);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 1000), 0);
    cr_assert_eq(fx_decide(&lim, &cell, 400LL * 86400000, 0).remaining, 5);
}

Test(gcra, values_at_the_bounds_do_not_overflow) {
    rk_limit_t lim = GCRA(1, RK_WINDOW_MS_MAX, RK_BURST_MAX);
    rk_cell_t cell = {0};
    int64_t now = RK_NOW_MS_MAX;
    rk_decision_t d = fx_decide(&lim, &cell, now, RK_BURST_MAX);
    cr_assert(d.allowed);
    cr_assert_eq(d.reset_ms, RK_BURST_MAX * RK_WINDOW_MS_MAX);
    d = fx_decide(&lim, &cell, now + 1000, 1); /* clamped to NOW_MAX */
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, RK_WINDOW_MS_MAX);
    lim = GCRA(RK_LIMIT_MAX, RK_WINDOW_MS_MAX, RK_BURST_MAX);
    rk_cell_t fast = {0};
    cr_assert(fx_decide(&lim, &fast, 123456789, RK_BURST_MAX - 1).allowed);
    fx_check_state(&lim, &fast, 123456789 + 17, 3);
}

Test(gcra, retry_after_and_reset_are_exact_in_random_sequences) {
    fx_random_walk(RK_ALG_GCRA, 200, 200);
}
