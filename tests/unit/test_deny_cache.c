/*
 * test_deny_cache.c — the local deny cache: what it remembers, for how long,
 * and what makes it forget.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "check/deny_cache.h"

static rk_rule_t rule_of(const char *id, rk_algorithm_t alg, int64_t version) {
    rk_rule_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    r.limit = (rk_limit_t){.algorithm = alg, .limit = 10, .window_ms = 60000, .burst = 10};
    r.version = version;
    return r;
}

static rk_decision_t denial(int64_t retry_after_ms, int64_t reset_ms) {
    return (rk_decision_t){.allowed = false,
                           .limit = 10,
                           .remaining = 0,
                           .retry_after_ms = retry_after_ms,
                           .reset_ms = reset_ms};
}

TestSuite(deny_cache, .init = rk_deny_cache_clear);

Test(deny_cache, answers_a_remembered_denial_counting_down_until_it_ends) {
    rk_rule_t r = rule_of("login", RK_ALG_TOKEN_BUCKET, 1);
    rk_decision_t d = denial(600, 60000);
    rk_deny_cache_remember(&r, &r.limit, "203.0.113.7", 1000, &d);
    rk_decision_t out;
    cr_assert(rk_deny_cache_lookup(&r, &r.limit, "203.0.113.7", 1000, &out));
    cr_assert_eq(out.allowed, false);
    cr_assert_eq(out.retry_after_ms, 600);
    cr_assert_eq(out.reset_ms, 60000);
    cr_assert_eq(out.limit, 10);
    cr_assert(rk_deny_cache_lookup(&r, &r.limit, "203.0.113.7", 1450, &out));
    cr_assert_eq(out.retry_after_ms, 150);
    cr_assert_eq(out.reset_ms, 59550);
    cr_assert(rk_deny_cache_lookup(&r, &r.limit, "203.0.113.7", 1599, &out));
    cr_assert_eq(out.retry_after_ms, 1);
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "203.0.113.7", 1600, &out),
                  "at retry_after_ms the store must be asked again");
}

Test(deny_cache, matches_only_the_same_rule_version_limit_and_key) {
    rk_rule_t r = rule_of("api", RK_ALG_FIXED_WINDOW, 3);
    rk_decision_t d = denial(5000, 5000), out;
    rk_deny_cache_remember(&r, &r.limit, "k1", 0, &d);
    cr_assert(rk_deny_cache_lookup(&r, &r.limit, "k1", 10, &out));
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "k2", 10, &out));
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "k", 10, &out));
    rk_rule_t other = rule_of("api2", RK_ALG_FIXED_WINDOW, 3);
    cr_assert_not(rk_deny_cache_lookup(&other, &other.limit, "k1", 10, &out));
    rk_rule_t changed = rule_of("api", RK_ALG_FIXED_WINDOW, 4);
    cr_assert_not(rk_deny_cache_lookup(&changed, &changed.limit, "k1", 10, &out),
                  "a new rule version must ask the store");
    rk_limit_t plan = r.limit;
    plan.limit = 100; /* a plan or an override of this key */
    cr_assert_not(rk_deny_cache_lookup(&r, &plan, "k1", 10, &out));
}

Test(deny_cache, forgets_a_key_whose_counters_are_reset) {
    rk_rule_t r = rule_of("api", RK_ALG_GCRA, 1);
    rk_decision_t d = denial(5000, 5000), out;
    rk_deny_cache_remember(&r, &r.limit, "k1", 0, &d);
    rk_deny_cache_remember(&r, &r.limit, "k2", 0, &d);
    rk_deny_cache_forget("api", "k1");
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "k1", 10, &out));
    cr_assert(rk_deny_cache_lookup(&r, &r.limit, "k2", 10, &out));
}

Test(deny_cache, remembers_denials_only) {
    rk_rule_t r = rule_of("api", RK_ALG_SLIDING_WINDOW, 1);
    rk_decision_t allowed = {.allowed = true, .limit = 10, .remaining = 3}, out;
    rk_deny_cache_remember(&r, &r.limit, "k", 0, &allowed);
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "k", 0, &out));
    rk_decision_t no_retry = denial(0, 0);
    rk_deny_cache_remember(&r, &r.limit, "k", 0, &no_retry);
    cr_assert_not(rk_deny_cache_lookup(&r, &r.limit, "k", 0, &out));
}

Test(deny_cache, applies_to_cost_one_checks_of_algorithms_whose_denials_cannot_end_early) {
    rk_limit_t lim = {.algorithm = RK_ALG_TOKEN_BUCKET, .limit = 5, .window_ms = 1000, .burst = 5};
    cr_assert(rk_deny_cache_applies(&lim, 1));
    cr_assert_not(rk_deny_cache_applies(&lim, 0), "a peek is never denied");
    cr_assert_not(rk_deny_cache_applies(&lim, 2));
    lim.algorithm = RK_ALG_CONCURRENCY;
    cr_assert_not(rk_deny_cache_applies(&lim, 1), "a release frees a slot early");
    lim.algorithm = RK_ALG_LEAKY_BUCKET;
    cr_assert(rk_deny_cache_applies(&lim, 1));
    lim.shape = true;
    cr_assert_not(rk_deny_cache_applies(&lim, 1));
    for (rk_algorithm_t a = RK_ALG_FIXED_WINDOW; a <= RK_ALG_GCRA; a++) {
        lim.algorithm = a;
        cr_assert(rk_deny_cache_applies(&lim, 1), "%s", rk_algorithm_name(a));
    }
}
