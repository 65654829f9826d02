/*
 * test_stats_slots.c — rule ids to statistics slots: the bound of
 * RK_STATS_MAX_RULES, "_other" past it, and the slots of deleted rules
 * freed for new ones (the statistics thread's pass, rk_stats_slots_tend).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rules/rules.h"
#include "stats/stats.h"

static size_t slot_of(const char *id) {
    return rk_stats_slot(id, strlen(id));
}

/* live(): the ids starting with the prefix ctx names ("" for none at all). */
static bool starts_with(const char *id, void *ctx) {
    const char *prefix = ctx;
    return *prefix && strncmp(id, prefix, strlen(prefix)) == 0;
}

/* Runs the thread's passes over seconds: after the grace, and one more to free. */
static int64_t tend_past_grace(const char *live_prefix, int64_t now_ms) {
    rk_stats_slots_tend(starts_with, (void *)live_prefix, now_ms);
    now_ms += RK_RULES_GRACE_MS;
    rk_stats_slots_tend(starts_with, (void *)live_prefix, now_ms);
    now_ms += 1000;
    rk_stats_slots_tend(starts_with, (void *)live_prefix, now_ms);
    return now_ms + 1000;
}

static void fill(const char *prefix, size_t n) {
    char id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%zu", prefix, i);
        cr_assert_lt(slot_of(id), RK_STATS_MAX_RULES, "%s has a slot of its own", id);
    }
}

Test(stats_slots, past_the_bound_a_rule_counts_under_other) {
    fill("r", RK_STATS_MAX_RULES);
    cr_assert_null(rk_stats_slot_rule(RK_STATS_OTHER), "nothing under _other yet");
    cr_assert_eq(slot_of("one-too-many"), RK_STATS_OTHER);
    cr_assert_str_eq(rk_stats_slot_rule(RK_STATS_OTHER), "_other");
    size_t again = slot_of("r7");
    cr_assert_str_eq(rk_stats_slot_rule(again), "r7");
}

Test(stats_slots, deleted_rules_free_their_slots_for_new_rules_after_the_grace) {
    fill("old", RK_STATS_MAX_RULES);
    cr_assert_eq(slot_of("old-past-the-bound"), RK_STATS_OTHER);
    /* every "old" rule deleted: within the grace, nothing is freed */
    int64_t now_ms = 1700000000000;
    rk_stats_slots_tend(starts_with, "", now_ms);
    rk_stats_slots_tend(starts_with, "", now_ms + RK_RULES_GRACE_MS - 1);
    cr_assert_eq(slot_of("new-a"), RK_STATS_OTHER);
    tend_past_grace("new", now_ms + RK_RULES_GRACE_MS);
    size_t b = slot_of("new-b"), a = slot_of("new-a");
    cr_assert_lt(b, RK_STATS_MAX_RULES, "a new rule has a slot of its own");
    cr_assert_lt(a, RK_STATS_MAX_RULES, "the rule that was under _other got one too");
    cr_assert_neq(a, b);
    cr_assert_str_eq(rk_stats_slot_rule(a), "new-a");
    cr_assert_str_eq(rk_stats_slot_rule(b), "new-b");
    for (int f = 0; f < RK_STAT_FIELDS; f++)
        cr_assert_eq(rk_stats_slot_base(b, f), 0, "no earlier owner had counts here");
}

Test(stats_slots, a_live_ruleset_of_1024_rules_all_have_slots_after_churn) {
    fill("gone", 1000);
    /* 1024 live rules arrive while the 1000 deleted ones still hold slots */
    char id[32];
    for (size_t i = 0; i < RK_STATS_MAX_RULES; i++) {
        snprintf(id, sizeof id, "live%zu", i);
        slot_of(id);
    }
    int64_t now_ms = 1700000000000;
    for (int pass = 0; pass < 40; pass++, now_ms += 1000)
        rk_stats_slots_tend(starts_with, "live", pass == 0 ? now_ms : now_ms + RK_RULES_GRACE_MS);
    for (size_t i = 0; i < RK_STATS_MAX_RULES; i++) {
        snprintf(id, sizeof id, "live%zu", i);
        size_t s = slot_of(id);
        cr_assert_lt(s, RK_STATS_MAX_RULES, "%s has a slot of its own", id);
        cr_assert_str_eq(rk_stats_slot_rule(s), id);
    }
}

Test(stats_slots, ten_thousand_rule_ids_come_and_go_and_each_gets_a_slot) {
    int64_t now_ms = 1700000000000;
    char id[32], prefix[16];
    for (int round = 0; round < 20; round++) {
        snprintf(prefix, sizeof prefix, "g%d-", round);
        for (size_t i = 0; i < 500; i++) {
            snprintf(id, sizeof id, "%s%zu", prefix, i);
            size_t s = slot_of(id);
            cr_assert_lt(s, RK_STATS_MAX_RULES, "round %d: %s has a slot of its own", round, id);
            cr_assert_str_eq(rk_stats_slot_rule(s), id);
        }
        now_ms = tend_past_grace("none-live", now_ms); /* the table is rebuilt on the way */
    }
}
