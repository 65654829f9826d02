/*
 * test_fixed_window.c — a count per window aligned to floor(now/window)*window.
 */
#include "limiter_fixture.h"

#define FW(limit, window) fx_limit(RK_ALG_FIXED_WINDOW, limit, window, limit)

Test(fixed_window, admits_limit_per_aligned_window_then_denies_until_its_end) {
    rk_limit_t lim = FW(3, 1000);
    rk_cell_t cell = {0};
    for (int i = 0; i < 3; i++) {
        rk_decision_t d = fx_decide(&lim, &cell, 5250, 1);
        cr_assert(d.allowed);
        cr_assert_eq(d.remaining, 2 - i);
        cr_assert_eq(d.reset_ms, 750);
    }
    rk_decision_t d = fx_decide(&lim, &cell, 5999, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1);
    cr_assert_eq(d.reset_ms, 1);
    d = fx_decide(&lim, &cell, 6000, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 2);
    cr_assert_eq(d.reset_ms, 1000);
}

Test(fixed_window, window_edges_belong_to_the_next_window) {
    rk_limit_t lim = FW(1, 60000);
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, 59999, 1).allowed);
    cr_assert_not(fx_try(&lim, &cell, 59999, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 60000, 1).allowed);
    cr_assert(fx_decide(&lim, &cell, 120000, 1).allowed);
}

Test(fixed_window, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = FW(5, 1000);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 10, 4);
    rk_cell_t before = cell;
    cr_assert_not(fx_decide(&lim, &cell, 20, 2).allowed);
    rk_decision_t peek = fx_decide(&lim, &cell, 20, 0);
    cr_assert(memcmp(&before, &cell, sizeof cell) == 0);
    cr_assert_eq(peek.remaining, 1);
    cr_assert(fx_decide(&lim, &cell, 20, 1).allowed);
}

Test(fixed_window, peek_on_a_fresh_key_reports_full_and_no_reset) {
    rk_limit_t lim = FW(7, 1000);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 123456, 0);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 7);
    cr_assert_eq(d.reset_ms, 0);
    cr_assert_eq(cell.a, 0);
    cr_assert_eq(cell.b, 0);
}

Test(fixed_window, cost_larger_than_the_limit_never_passes) {
    rk_limit_t lim = FW(5, 1000);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 0, 6);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000);
    cr_assert_eq(d.remaining, 5);
    cr_assert(fx_decide(&lim, &cell, 0, 5).allowed);
}

Test(fixed_window, clock_going_back_stays_in_the_recorded_window) {
    rk_limit_t lim = FW(2, 1000);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 7500, 2);
    rk_decision_t d = fx_decide(&lim, &cell, 3000, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000); /* as seen from the recorded start, 7000 */
    cr_assert(fx_decide(&lim, &cell, 8000, 1).allowed);
}

Test(fixed_window, ttl_ends_with_the_window) {
    rk_limit_t lim = FW(2, 1000);
    rk_cell_t cell = {0};
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 500), 0);
    fx_decide(&lim, &cell, 1200, 1);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 1200), 800);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 2000), 0);
}

Test(fixed_window, values_at_the_bounds_do_not_overflow) {
    rk_limit_t lim = FW(RK_LIMIT_MAX, RK_WINDOW_MS_MAX);
    rk_cell_t cell = {0};
    int64_t now = RK_NOW_MS_MAX - 2 * RK_WINDOW_MS_MAX;
    cr_assert(fx_decide(&lim, &cell, now, RK_LIMIT_MAX).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, now, RK_COST_MAX);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_leq(d.retry_after_ms, RK_WINDOW_MS_MAX);
    cr_assert_gt(d.retry_after_ms, 0);
    fx_check_state(&lim, &cell, now, 1);
}

Test(fixed_window, retry_after_and_reset_are_exact_in_random_sequences) {
    fx_random_walk(RK_ALG_FIXED_WINDOW, 200, 200);
}
