/*
 * test_sliding_window.c — prev*(1 - elapsed/window) + curr + cost <= limit.
 */
#include "limiter_fixture.h"

#define SW(limit, window) fx_limit(RK_ALG_SLIDING_WINDOW, limit, window, limit)

Test(sliding_window, weighs_the_previous_window_by_its_share_still_inside) {
    rk_limit_t lim = SW(10, 1000);
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, 0, 10).allowed); /* window [0, 1000) full */
    /* At 1250 the previous window weighs 10 * 0.75 = 7.5: 2 more pass, not 3. */
    rk_decision_t d = fx_decide(&lim, &cell, 1250, 0);
    cr_assert_eq(d.remaining, 2);
    cr_assert(fx_decide(&lim, &cell, 1250, 2).allowed);
    d = fx_decide(&lim, &cell, 1250, 1);
    cr_assert_not(d.allowed);
    /* 7.5 + 2 + 1 <= 10 needs prev weight <= 7: elapsed >= 300. */
    cr_assert_eq(d.retry_after_ms, 50);
    cr_assert_not(fx_try(&lim, &cell, 1299, 1).allowed);
    cr_assert(fx_try(&lim, &cell, 1300, 1).allowed);
}

Test(sliding_window, previous_window_is_forgotten_after_two_windows) {
    rk_limit_t lim = SW(4, 1000);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 500, 4);
    rk_decision_t d = fx_decide(&lim, &cell, 500, 0);
    cr_assert_eq(d.reset_ms, 1500); /* end of the next window */
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 500), 1500);
    cr_assert_eq(fx_decide(&lim, &cell, 1999, 0).remaining, 3);
    cr_assert_eq(fx_decide(&lim, &cell, 2000, 0).remaining, 4);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, 2000), 0);
}

Test(sliding_window, retry_after_may_wait_into_the_next_window) {
    rk_limit_t lim = SW(10, 1000);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 1100, 9); /* curr 9 */
    rk_decision_t d = fx_decide(&lim, &cell, 1100, 2);
    cr_assert_not(d.allowed);
    /* Next window: 9 * (1 - e/1000) + 2 <= 10 needs e >= 112 (9*888 <= 8000). */
    cr_assert_eq(d.retry_after_ms, 900 + 112);
    cr_assert_not(fx_try(&lim, &cell, 2111, 2).allowed);
    cr_assert(fx_try(&lim, &cell, 2112, 2).allowed);
}

Test(sliding_window, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = SW(3, 100);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 50, 3);
    rk_cell_t before = cell;
    cr_assert_not(fx_decide(&lim, &cell, 60, 1).allowed);
    fx_decide(&lim, &cell, 160, 0);
    cr_assert(memcmp(&before, &cell, sizeof cell) == 0);
}

Test(sliding_window, cost_larger_than_the_limit_never_passes) {
    rk_limit_t lim = SW(3, 100);
    rk_cell_t cell = {0};
    rk_decision_t d = fx_decide(&lim, &cell, 0, 4);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 100);
}

Test(sliding_window, clock_going_back_is_clamped_to_the_recorded_window) {
    rk_limit_t lim = SW(2, 1000);
    rk_cell_t cell = {0};
    fx_decide(&lim, &cell, 5000, 2);
    rk_decision_t d = fx_decide(&lim, &cell, 100, 1);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.reset_ms, 2000);
}

Test(sliding_window, values_at_the_bounds_do_not_overflow) {
    rk_limit_t lim = SW(RK_LIMIT_MAX, RK_WINDOW_MS_MAX);
    rk_cell_t cell = {0};
    int64_t now = RK_NOW_MS_MAX - 3 * RK_WINDOW_MS_MAX;
    cr_assert(fx_decide(&lim, &cell, now, RK_LIMIT_MAX).allowed);
    fx_check_state(&lim, &cell, now, 1);
    fx_check_state(&lim, &cell, now + RK_WINDOW_MS_MAX / 3, RK_LIMIT_MAX / 2);
    rk_decision_t d = fx_decide(&lim, &cell, now, RK_COST_MAX);
    cr_assert_not(d.allowed);
    cr_assert_gt(d.retry_after_ms, 0);
}

Test(sliding_window, retry_after_and_reset_are_exact_in_random_sequences) {
    fx_random_walk(RK_ALG_SLIDING_WINDOW, 200, 200);
}
