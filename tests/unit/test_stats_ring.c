/*
 * test_stats_ring.c — the 15-minute ring of per-second counts: which
 * second a slot holds, sums over windows, overwriting after a lap.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "stats/ring.h"

static rk_ring_t ring;

static void clear_ring(void) {
    rk_ring_clear(&ring);
}

static rk_ring_entry_t entry(uint32_t slot, uint64_t allowed, uint64_t denied) {
    rk_ring_entry_t e = {.slot = slot};
    e.n[0] = allowed;
    e.n[1] = denied;
    return e;
}

TestSuite(stats_ring, .fini = clear_ring);

Test(stats_ring, index_wraps_every_900_seconds_and_handles_negative_seconds) {
    cr_assert_eq(rk_ring_index(0), 0);
    cr_assert_eq(rk_ring_index(899), 899);
    cr_assert_eq(rk_ring_index(900), 0);
    cr_assert_eq(rk_ring_index(1700000001), 1700000001 % 900);
    cr_assert_eq(rk_ring_index(-1), 899);
}

Test(stats_ring, a_second_reads_back_with_totals_and_per_rule_counts) {
    rk_ring_entry_t e[] = {entry(7, 3, 1), entry(2, 5, 0), entry(7, 1, 1)};
    cr_assert_eq(rk_ring_put(&ring, 1700000000, e, 3), RK_OK);
    const rk_ring_second_t *s = rk_ring_get(&ring, 1700000000);
    cr_assert_not_null(s);
    cr_assert_eq(s->len, 2, "the two entries of slot 7 are merged");
    cr_assert_eq(s->totals[0], 9);
    cr_assert_eq(s->totals[1], 2);
    uint64_t c[RK_STAT_FIELDS];
    rk_ring_counts(&ring, 1700000000, 7, c);
    cr_assert_eq(c[0], 4);
    cr_assert_eq(c[1], 2);
    rk_ring_counts(&ring, 1700000000, 3, c);
    cr_assert_eq(c[0] + c[1] + c[2] + c[3], 0, "a slot without traffic reads zero");
    rk_ring_counts(&ring, 1700000000, -1, c);
    cr_assert_eq(c[0], 9, "slot -1 reads the totals");
}

Test(stats_ring, a_second_overwritten_one_lap_later_no_longer_reads_as_the_old_one) {
    rk_ring_entry_t e = entry(1, 10, 0);
    rk_ring_put(&ring, 1000, &e, 1);
    e = entry(1, 4, 0);
    rk_ring_put(&ring, 1000 + RK_RING_SECONDS, &e, 1);
    cr_assert_null(rk_ring_get(&ring, 1000));
    uint64_t c[RK_STAT_FIELDS];
    rk_ring_counts(&ring, 1000, 1, c);
    cr_assert_eq(c[0], 0);
    rk_ring_counts(&ring, 1000 + RK_RING_SECONDS, 1, c);
    cr_assert_eq(c[0], 4);
}

Test(stats_ring, sums_a_window_skipping_missing_seconds_and_ignoring_those_outside) {
    for (int64_t t = 2000; t < 2010; t++) {
        if (t == 2005)
            continue; /* a second nobody wrote */
        rk_ring_entry_t e[] = {entry(0, 1, 0), entry(3, 0, 2)};
        rk_ring_put(&ring, t, e, 2);
    }
    uint64_t totals[RK_STAT_FIELDS] = {0};
    uint64_t per_slot[4][RK_STAT_FIELDS];
    memset(per_slot, 0, sizeof per_slot);
    rk_ring_sum(&ring, 2003, 2007, totals, per_slot, 4, NULL);
    cr_assert_eq(totals[0], 4, "2003, 2004, 2006, 2007");
    cr_assert_eq(totals[1], 8);
    cr_assert_eq(per_slot[0][0], 4);
    cr_assert_eq(per_slot[3][1], 8);
    cr_assert_eq(per_slot[1][0] + per_slot[2][0], 0);
}

Test(stats_ring, a_window_longer_than_the_ring_counts_each_held_second_once) {
    for (int64_t t = 5000; t < 5000 + RK_RING_SECONDS; t++) {
        rk_ring_entry_t e = entry(0, 1, 0);
        rk_ring_put(&ring, t, &e, 1);
    }
    uint64_t totals[RK_STAT_FIELDS] = {0};
    rk_ring_sum(&ring, 0, 5000 + RK_RING_SECONDS - 1, totals, NULL, 0, NULL);
    cr_assert_eq(totals[0], RK_RING_SECONDS);
}

Test(stats_ring, dropping_a_slot_removes_its_rows_and_keeps_the_totals) {
    rk_ring_entry_t e[] = {entry(3, 4, 1), entry(5, 2, 0)};
    cr_assert_eq(rk_ring_put(&ring, 1700000000, e, 2), RK_OK);
    cr_assert_eq(rk_ring_put(&ring, 1700000001, e, 1), RK_OK);
    rk_ring_drop_slot(&ring, 3);
    uint64_t c[RK_STAT_FIELDS];
    rk_ring_counts(&ring, 1700000000, 3, c);
    cr_assert_eq(c[0] + c[1], 0);
    rk_ring_counts(&ring, 1700000000, 5, c);
    cr_assert_eq(c[0], 2);
    cr_assert_eq(rk_ring_get(&ring, 1700000001)->len, 0);
    rk_ring_counts(&ring, 1700000000, -1, c);
    cr_assert_eq(c[0], 6, "the second's totals stay");
}

Test(stats_ring, the_checks_entry_is_kept_apart_from_the_rules_totals) {
    rk_ring_entry_t e[] = {entry(RK_RING_CHECKS, 1, 1), entry(4, 2, 1), entry(9, 1, 0)};
    cr_assert_eq(rk_ring_put(&ring, 3000, e, 3), RK_OK);
    cr_assert_eq(rk_ring_put(&ring, 3001, e, 1), RK_OK);
    const rk_ring_second_t *s = rk_ring_get(&ring, 3000);
    cr_assert_eq(s->len, 3, "the checks travel with the rules' entries");
    cr_assert_eq(s->entries[2].slot, RK_RING_CHECKS, "sorted last");
    cr_assert(s->totals[0] == 3 && s->totals[1] == 1, "the totals are the rules' decisions");
    cr_assert(s->checks[0] == 1 && s->checks[1] == 1);
    uint64_t c[RK_STAT_FIELDS];
    rk_ring_counts(&ring, 3000, (long)RK_RING_CHECKS, c);
    cr_assert(c[0] == 1 && c[1] == 1);
    uint64_t totals[RK_STAT_FIELDS] = {0}, per_slot[16][RK_STAT_FIELDS] = {{0}};
    rk_ring_sum(&ring, 3000, 3001, totals, per_slot, 16, NULL);
    cr_assert(totals[0] == 3 && totals[1] == 1);
    uint64_t checks[RK_STAT_FIELDS] = {0}, unused[RK_STAT_FIELDS] = {0};
    rk_ring_sum(&ring, 2990, 3001, unused, NULL, 0, checks);
    cr_assert(checks[0] == 2 && checks[1] == 2);
}
