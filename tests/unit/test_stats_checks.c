/*
 * test_stats_checks.c — the checks counted apart from the rules' decisions:
 * each request once, however many rules decided it, by its outcome.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "stats/stats.h"

static rk_rule_t rule_of(const char *id, rk_mode_t mode) {
    rk_rule_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    r.mode = mode;
    return r;
}

/* An item of rule r, decided allowed or not; opens: the first of its check. */
static rk_check_item_t item(const rk_rule_t *r, bool allowed, bool opens) {
    rk_check_item_t it;
    memset(&it, 0, sizeof it);
    it.rule = r;
    it.decision.allowed = allowed;
    it.opens_check = opens;
    return it;
}

/* The checks counted so far, as {allowed, denied, errors}. */
static void counted(uint64_t out[3]) {
    uint64_t c[RK_STAT_FIELDS];
    rk_stats_checks_cumulative(c);
    out[0] = c[RK_STAT_ALLOWED];
    out[1] = c[RK_STAT_DENIED];
    out[2] = c[RK_STAT_ERRORS];
    cr_assert_eq(c[RK_STAT_SHADOW_DENIED], 0, "a check is never shadow denied");
}

Test(stats_checks, a_request_three_rules_decide_is_one_check_denied_when_one_denies) {
    rk_rule_t a = rule_of("a", RK_MODE_ENFORCE), b = rule_of("b", RK_MODE_ENFORCE),
              c = rule_of("c", RK_MODE_ENFORCE);
    rk_check_item_t allowed[] = {item(&a, true, true), item(&b, true, false),
                                 item(&c, true, false)};
    rk_check_item_t denied[] = {item(&a, true, true), item(&b, false, false),
                                item(&c, true, false)};
    rk_stats_count_checks(allowed, 3);
    rk_stats_count_checks(denied, 3);
    uint64_t n[3];
    counted(n);
    cr_assert(n[0] == 1 && n[1] == 1 && n[2] == 0, "allowed %llu denied %llu errors %llu",
              (unsigned long long)n[0], (unsigned long long)n[1], (unsigned long long)n[2]);
}

Test(stats_checks, each_entry_of_a_batch_is_a_check) {
    rk_rule_t a = rule_of("a", RK_MODE_ENFORCE);
    rk_check_item_t entries[5];
    for (size_t i = 0; i < 5; i++)
        entries[i] = item(&a, i != 2, true);
    rk_stats_count_checks(entries, 5);
    uint64_t n[3];
    counted(n);
    cr_assert(n[0] == 4 && n[1] == 1 && n[2] == 0);
}

Test(stats_checks, a_shadow_would_deny_passes_and_rules_switched_off_decide_nothing) {
    rk_rule_t on = rule_of("on", RK_MODE_ENFORCE), shadow = rule_of("trial", RK_MODE_SHADOW),
              off = rule_of("off", RK_MODE_OFF);
    rk_check_item_t checks[] = {item(&shadow, false, true), item(&on, true, false),
                                item(&off, false, true)};
    rk_stats_count_checks(checks, 3);
    uint64_t n[3];
    counted(n);
    cr_assert(n[0] == 1 && n[1] == 0 && n[2] == 0, "the check of a switched-off rule is none");
}

Test(stats_checks, a_store_failure_counts_as_an_error_unless_the_store_denied) {
    rk_rule_t a = rule_of("a", RK_MODE_ENFORCE), b = rule_of("b", RK_MODE_ENFORCE);
    rk_check_item_t open[] = {item(&a, true, true), item(&b, true, false)};
    open[1].failed_over = true; /* fail open let it through */
    rk_check_item_t closed[] = {item(&a, true, true), item(&b, false, false)};
    closed[1].failed_over = true; /* fail closed refused it */
    rk_check_item_t limited[] = {item(&a, false, true), item(&b, true, false)};
    limited[1].failed_over = true; /* refused by a's limit, whatever b's store did */
    rk_stats_count_checks(open, 2);
    rk_stats_count_checks(closed, 2);
    rk_stats_count_checks(limited, 2);
    uint64_t n[3];
    counted(n);
    cr_assert(n[0] == 0 && n[1] == 1 && n[2] == 2);
}

Test(stats_checks, the_lists_answers_count_as_checks) {
    rk_stats_count_listed(true, 3);
    rk_stats_count_listed(false, 2);
    rk_stats_count_listed(true, 0);
    uint64_t n[3];
    counted(n);
    cr_assert(n[0] == 2 && n[1] == 3 && n[2] == 0);
}
