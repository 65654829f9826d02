/*
 * test_concurrency.c — leases that expire window_ms after they are acquired.
 */
#include "limiter_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CC(limit, window) fx_limit(RK_ALG_CONCURRENCY, limit, window, limit)

static rk_decision_t acquire(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now, int64_t cost,
                             const char *id) {
    rk_decision_t d;
    cr_assert_eq(rk_lease_acquire(lim, set, now, cost, id, &d), RK_OK);
    return d;
}

static rk_lease_set_t set_copy(const rk_lease_set_t *set) {
    rk_lease_set_t c = *set;
    c.leases = malloc(sizeof *c.leases * (set->cap ? set->cap : 1));
    cr_assert_not_null(c.leases);
    if (set->len)
        memcpy(c.leases, set->leases, sizeof *c.leases * set->len); /* [0, head) too */
    return c;
}

static rk_decision_t try_acquire(const rk_limit_t *lim, const rk_lease_set_t *set, int64_t now,
                                 int64_t cost, const char *id) {
    rk_lease_set_t c = set_copy(set);
    rk_decision_t d = acquire(lim, &c, now, cost, id);
    rk_lease_set_free(&c);
    return d;
}

/* A lease's id as text again (the inverse of rk_lease_id_set). */
static void lease_id_text(const rk_lease_t *l, char out[RK_LEASE_ID_LEN + 1]) {
    if (l->id_form == RK_LEASE_ID_HEX) {
        rk_hex(l->id, RK_LEASE_ID_BYTES, out);
        return;
    }
    size_t len = l->id_form <= RK_LEASE_ID_BYTES ? l->id_form : 0;
    memcpy(out, l->id, len);
    out[len] = '\0';
}

Test(concurrency, admits_limit_live_leases_and_release_frees_one) {
    rk_limit_t lim = CC(2, 30000);
    rk_lease_set_t set = {0};
    cr_assert(acquire(&lim, &set, 0, 1, "a").allowed);
    rk_decision_t d = acquire(&lim, &set, 10, 1, "b");
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_ms, 30000);
    d = acquire(&lim, &set, 20, 1, "c");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 29980); /* when "a" expires */
    cr_assert(rk_lease_release(&set, 30, "a", 0));
    cr_assert_not(rk_lease_release(&set, 30, "a", 0), "released twice");
    cr_assert(acquire(&lim, &set, 40, 1, "c").allowed);
    rk_lease_set_free(&set);
}

Test(concurrency, a_release_naming_units_ends_only_a_lease_of_those_units) {
    rk_limit_t lim = CC(5, 30000);
    rk_lease_set_t set = {0};
    cr_assert(acquire(&lim, &set, 0, 3, "a").allowed);
    cr_assert_not(rk_lease_release(&set, 10, "a", 2), "a holds 3 units, not 2");
    cr_assert_eq(acquire(&lim, &set, 10, 0, NULL).remaining, 2);
    cr_assert(rk_lease_release(&set, 10, "a", 3));
    cr_assert_eq(acquire(&lim, &set, 10, 0, NULL).remaining, 5);
    rk_lease_set_free(&set);
}

Test(concurrency, an_unreleased_lease_expires_after_the_window) {
    rk_limit_t lim = CC(1, 1000);
    rk_lease_set_t set = {0};
    acquire(&lim, &set, 0, 1, "a");
    cr_assert_not(acquire(&lim, &set, 999, 1, "b").allowed);
    cr_assert(acquire(&lim, &set, 1000, 1, "b").allowed);
    cr_assert_not(rk_lease_release(&set, 1500, "a", 0), "a had expired");
    cr_assert_eq(rk_lease_ttl_ms(&set, 1500), 500);
    rk_lease_set_free(&set);
}

Test(concurrency, leases_hold_their_cost_in_units) {
    rk_limit_t lim = CC(10, 1000);
    rk_lease_set_t set = {0};
    cr_assert(acquire(&lim, &set, 0, 4, "a").allowed);
    cr_assert(acquire(&lim, &set, 100, 5, "b").allowed);
    rk_decision_t d = acquire(&lim, &set, 200, 6, "c");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.remaining, 1);
    cr_assert_eq(d.retry_after_ms, 900); /* "b" must expire too: at 1100 */
    d = acquire(&lim, &set, 200, 11, "c");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1000); /* never: max(reset 900, window) */
    rk_lease_set_free(&set);
}

Test(concurrency, a_full_set_under_churn_stays_exact_and_compact) {
    /* The limit's worth of leases, then one expiring and one acquired per ms:
     * the dropped leases are never counted, and their room is reused instead
     * of the array growing with every acquisition. */
    enum { LIMIT = 1000 };
    rk_limit_t lim = CC(LIMIT, LIMIT);
    rk_lease_set_t set = {0};
    char id[16];
    for (int t = 0; t < 20 * LIMIT; t++) {
        snprintf(id, sizeof id, "l%d", t);
        rk_decision_t d = acquire(&lim, &set, t, 1, id);
        cr_assert(d.allowed, "t=%d", t);
        cr_assert_eq(d.remaining, t < LIMIT ? LIMIT - 1 - t : 0, "t=%d", t);
        if (t >= LIMIT) {
            rk_decision_t denied = acquire(&lim, &set, t, 1, "x");
            cr_assert_not(denied.allowed);
            cr_assert_eq(denied.retry_after_ms, 1, "the oldest live lease expires next");
        }
    }
    cr_assert_eq(set.units, LIMIT);
    cr_assert_leq(set.cap, 4 * LIMIT, "%u slots for %d live leases", set.cap, LIMIT);
    cr_assert(rk_lease_release(&set, 20 * LIMIT - 1, "l19500", 0));
    cr_assert_eq(set.units, LIMIT - 1);
    cr_assert(acquire(&lim, &set, 20 * LIMIT - 1, 1, "y").allowed);
    rk_lease_set_free(&set);
}

Test(concurrency, any_number_of_expired_leases_is_found_exactly) {
    /* The search for the first live lease gallops from the oldest: every
     * count of expired leases, from none to all. */
    enum { N = 2000, W = 10000 };
    rk_limit_t lim = CC(N, W);
    rk_lease_set_t set = {0};
    char id[16];
    for (int t = 0; t < N; t++) {
        snprintf(id, sizeof id, "l%d", t);
        acquire(&lim, &set, t, 1, id);
    }
    for (int k = 0; k <= N; k++) {
        cr_assert_eq(try_acquire(&lim, &set, W + k - 1, 0, NULL).remaining, k, "%d expired", k);
        if (k < N)
            cr_assert_eq(try_acquire(&lim, &set, W + k - 1, k + 1, "x").retry_after_ms, 1);
    }
    rk_lease_set_free(&set);
}

Test(concurrency, denied_request_and_peek_change_nothing) {
    rk_limit_t lim = CC(1, 1000);
    rk_lease_set_t set = {0};
    acquire(&lim, &set, 0, 1, "a");
    cr_assert_not(acquire(&lim, &set, 10, 1, "b").allowed);
    rk_decision_t peek;
    rk_lease_peek(&lim, &set, 5000, &peek);
    cr_assert_eq(peek.remaining, 1);
    cr_assert_eq(set.len, 1, "a peek does not even drop expired leases");
    char id[RK_LEASE_ID_LEN + 1];
    lease_id_text(&set.leases[0], id);
    cr_assert_str_eq(id, "a");
    rk_lease_set_free(&set);
}

Test(concurrency, refuses_a_lease_id_it_cannot_keep) {
    rk_limit_t lim = CC(4, 1000);
    rk_lease_set_t set = {0};
    rk_decision_t d;
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, NULL, &d), RK_ERR);
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "", &d), RK_ERR);
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "0123456789abcdef0123456789abcdef0", &d),
                 RK_ERR, "33 characters");
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "0123456789abcdef0", &d), RK_ERR,
                 "17 characters, not 32 hex digits");
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "0123456789ABCDEF0123456789abcdef", &d), RK_ERR,
                 "32 characters, not all lowercase hex");
    cr_assert_eq(set.len, 0, "nothing acquired");
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "0123456789abcdef0123456789abcdef", &d), RK_OK);
    cr_assert_eq(rk_lease_acquire(&lim, &set, 0, 1, "sixteen-chars-id", &d), RK_OK);
    rk_lease_set_free(&set);
}

/* ratekitd's ids (32 hex digits) are kept as 16 bytes, shorter ones as text. */
Test(concurrency, a_lease_gives_back_the_id_it_was_acquired_with) {
    static const char *const ids[] = {"0123456789abcdef0123456789abcdef",
                                      "ffffffffffffffffffffffffffffffff", "a", "sixteen-chars-id"};
    rk_limit_t lim = CC(8, 1000);
    rk_lease_set_t set = {0};
    for (size_t i = 0; i < RK_ARRAY_LEN(ids); i++)
        cr_assert(acquire(&lim, &set, 0, 1, ids[i]).allowed);
    cr_assert_eq(sizeof(rk_lease_t), 32, "a lease is 32 bytes");
    for (size_t i = 0; i < RK_ARRAY_LEN(ids); i++) {
        char id[RK_LEASE_ID_LEN + 1];
        lease_id_text(&set.leases[i], id);
        cr_assert_str_eq(id, ids[i]);
    }
    cr_assert_not(rk_lease_release(&set, 1, "0123456789abcdef0123456789abcdee", 0),
                  "one digit apart");
    cr_assert_not(rk_lease_release(&set, 1, "0123456789ABCDEF0123456789ABCDEF", 0),
                  "an id no lease can have");
    cr_assert_not(rk_lease_release(&set, 1, "7369787465656e2d63686172732d6964", 0),
                  "the hex digits of \"sixteen-chars-id\": the same bytes, another id");
    for (size_t i = 0; i < RK_ARRAY_LEN(ids); i++)
        cr_assert(rk_lease_release(&set, 1, ids[i], 1), "%s", ids[i]);
    cr_assert_eq(set.len, 0);
    rk_lease_set_free(&set);
}

Test(concurrency, a_clock_gone_back_finds_the_lease_live_until_its_expiry) {
    rk_limit_t lim = CC(1, 1000);
    rk_lease_set_t set = {0};
    acquire(&lim, &set, 9000, 1, "a");
    rk_decision_t d = acquire(&lim, &set, 8500, 1, "b");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 1500, "a expires at 10000");
    cr_assert_eq(d.reset_ms, 1500);
    rk_lease_set_free(&set);
}

Test(concurrency, a_shortened_window_ends_new_leases_sooner_and_old_ones_when_told) {
    rk_limit_t minute = CC(2, 60000), two_s = CC(2, 2000);
    rk_lease_set_t set = {0};
    cr_assert(acquire(&minute, &set, 1000, 1, "old").allowed); /* expires at 61000 */
    cr_assert(acquire(&two_s, &set, 1000, 1, "new").allowed);  /* expires at 3000 */
    rk_decision_t d = acquire(&two_s, &set, 1000, 1, "x");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 2000, "the new lease frees its slot first");
    cr_assert_eq(d.reset_ms, 60000, "the old one is held for the minute it was given");

    d = acquire(&two_s, &set, 4000, 1, "y"); /* "new" has expired */
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_ms, 57000);
    d = acquire(&two_s, &set, 4000, 1, "z");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 2000, "y expires at 6000, before old");
    cr_assert(rk_lease_release(&set, 4000, "old", 1));
    cr_assert(acquire(&two_s, &set, 4000, 1, "z").allowed);
    cr_assert_eq(rk_lease_ttl_ms(&set, 4000), 2000);
    rk_lease_set_free(&set);
}

Test(concurrency, the_largest_limit_and_window_do_not_overflow) {
    rk_limit_t lim = CC(RK_CONCURRENCY_LIMIT_MAX, RK_WINDOW_MS_MAX);
    rk_lease_set_t set = {0};
    char id[16];
    for (int i = 0; i < RK_CONCURRENCY_LIMIT_MAX; i++) {
        snprintf(id, sizeof id, "l%d", i);
        cr_assert(acquire(&lim, &set, RK_NOW_MS_MAX, 1, id).allowed);
    }
    rk_decision_t d = acquire(&lim, &set, RK_NOW_MS_MAX, 1, "x");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, RK_WINDOW_MS_MAX);
    rk_lease_set_free(&set);
}

Test(concurrency, retry_after_and_reset_are_exact_in_random_sequences) {
    for (int walk = 0; walk < 150; walk++) {
        rk_limit_t lim = CC(fx_rand(1, 8), fx_rand(1, 3) == 1 ? fx_rand(1, 7) : 1000);
        rk_lease_set_t set = {0};
        int64_t now = fx_rand(0, 100000);
        char ids[150][16];
        for (int i = 0; i < 150; i++) {
            snprintf(ids[i], sizeof ids[i], "l%d", i); /* a fresh id, as ratekitd draws */
            int64_t cost = fx_rand(0, 9) == 0 ? 0 : fx_rand(1, 4) == 1 ? fx_rand(1, 10) : 1;
            rk_decision_t peek = try_acquire(&lim, &set, now, 0, NULL);
            cr_assert_eq(rk_lease_ttl_ms(&set, now) >= peek.reset_ms, true);
            if (peek.remaining > 0)
                cr_assert(try_acquire(&lim, &set, now, peek.remaining, "new").allowed);
            cr_assert_not(try_acquire(&lim, &set, now, peek.remaining + 1, "new").allowed);
            if (peek.reset_ms > 0) {
                cr_assert_eq(try_acquire(&lim, &set, now + peek.reset_ms, 0, NULL).remaining,
                             lim.limit);
                cr_assert_lt(try_acquire(&lim, &set, now + peek.reset_ms - 1, 0, NULL).remaining,
                             lim.limit);
            }
            rk_decision_t d = try_acquire(&lim, &set, now, cost, ids[i]);
            if (!d.allowed && cost <= lim.limit) {
                cr_assert(try_acquire(&lim, &set, now + d.retry_after_ms, cost, ids[i]).allowed);
                cr_assert_not(
                    try_acquire(&lim, &set, now + d.retry_after_ms - 1, cost, ids[i]).allowed);
            }
            if (i > 0 && fx_rand(0, 4) == 0)
                rk_lease_release(&set, now, ids[fx_rand(0, i - 1)], 0);
            else
                acquire(&lim, &set, now, cost, ids[i]);
            now += fx_rand(0, 2) == 0 ? 0 : fx_rand(0, lim.window_ms / 2 + 1);
        }
        rk_lease_set_free(&set);
    }
}
