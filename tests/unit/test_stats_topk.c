/*
 * test_stats_topk.c — the most denied keys: ranking, per-rule filtering,
 * and the bound on distinct keys.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "stats/topk.h"

static void add(rk_topk_t *m, const char *key, uint64_t n) {
    rk_topk_add(m, key, strlen(key), n);
}

Test(stats_topk, ranks_by_count_then_key_and_counts_repeats) {
    rk_topk_t m;
    rk_topk_init(&m, 100);
    add(&m, "login\tb", 3);
    add(&m, "login\ta", 3);
    add(&m, "login\tc", 1);
    add(&m, "login\tc", 5);
    rk_topk_entry_t top[2];
    cr_assert_eq(rk_topk_top(&m, "", top, 2), 2);
    cr_assert_str_eq(top[0].key, "login\tc");
    cr_assert_eq(top[0].count, 6);
    cr_assert_str_eq(top[1].key, "login\ta", "ties go to the smaller key");
    rk_topk_free(&m);
}

Test(stats_topk, a_rule_prefix_keeps_only_that_rules_keys) {
    rk_topk_t m;
    rk_topk_init(&m, 100);
    add(&m, "api\tk1", 50);
    add(&m, "api-v2\tk2", 40);
    add(&m, "login\tk3", 1);
    rk_topk_entry_t top[10];
    size_t n = rk_topk_top(&m, "api\t", top, 10);
    cr_assert_eq(n, 1, "api-v2 is another rule");
    cr_assert_str_eq(top[0].key, "api\tk1");
    rk_topk_free(&m);
}

Test(stats_topk, past_the_bound_new_keys_are_refused_and_known_keys_still_count) {
    rk_topk_t m;
    rk_topk_init(&m, 2);
    cr_assert(rk_topk_add(&m, "r\ta", 1, 1) || true);
    add(&m, "r\ta", 1);
    add(&m, "r\tb", 1);
    cr_assert_not(rk_topk_add(&m, "r\tc", 3, 1));
    cr_assert(rk_topk_add(&m, "r\ta", 3, 4));
    rk_topk_entry_t top[5];
    cr_assert_eq(rk_topk_top(&m, "", top, 5), 2);
    cr_assert_eq(top[0].count, 5);
    rk_topk_free(&m);
}
