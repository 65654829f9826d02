/*
 * test_refund.c — giving back what an allowed request consumed, for a
 * request another rule denied: each algorithm's refund (rk_cell_refund,
 * rk_log_refund, a lease's release), never into another window than the
 * request's, and the embedded store's refund requests (store.h).
 */
#include "limiter_fixture.h"

#include <stdio.h>

#include "store/store.h"

#define T0 1700000000000LL /* a minute boundary: T0 % 60000 == 20000, see below */
#define MINUTE 60000

/* The start of T0's minute. */
static int64_t minute_start(void) {
    return T0 / MINUTE * MINUTE;
}

/* Decides cost at now, then refunds it at the decision's at_ms; the state must be as before. */
static void assert_refund_restores(rk_limit_t lim, rk_cell_t cell, int64_t now, int64_t cost) {
    rk_cell_t before = cell;
    rk_decision_t d = fx_decide(&lim, &cell, now, cost);
    cr_assert(d.allowed, "%s: the request to refund was denied", rk_algorithm_name(lim.algorithm));
    rk_cell_refund(&lim, &cell, d.at_ms, cost);
    rk_decision_t want = fx_try(&lim, &before, now, 0), got = fx_try(&lim, &cell, now, 0);
    cr_assert_eq(got.remaining, want.remaining,
                 "%s: remaining %" PRId64 " after the refund, %" PRId64 " before the request",
                 rk_algorithm_name(lim.algorithm), got.remaining, want.remaining);
    cr_assert_eq(got.reset_ms, want.reset_ms, "%s: reset_ms", rk_algorithm_name(lim.algorithm));
}

Test(refund, every_cell_algorithm_is_back_where_it_was_before_the_request) {
    const rk_algorithm_t algs[] = {RK_ALG_FIXED_WINDOW, RK_ALG_SLIDING_WINDOW, RK_ALG_TOKEN_BUCKET,
                                   RK_ALG_GCRA, RK_ALG_LEAKY_BUCKET};
    for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
        rk_limit_t lim = fx_limit(algs[a], 10, MINUTE, 10);
        rk_cell_t cell = {0};
        assert_refund_restores(lim, cell, T0, 1); /* a fresh key: back to none */
        for (int i = 0; i < 4; i++)
            cr_assert(fx_decide(&lim, &cell, T0 + i, 1 + i % 2).allowed);
        for (int64_t cost = 1; cost <= 4; cost++)
            assert_refund_restores(lim, cell, T0 + 10, cost);
        lim.shape = true;
        assert_refund_restores(lim, cell, T0 + 10, 3);
    }
}

Test(refund, a_refunded_key_is_a_fresh_one) {
    const rk_algorithm_t algs[] = {RK_ALG_FIXED_WINDOW, RK_ALG_SLIDING_WINDOW, RK_ALG_GCRA,
                                   RK_ALG_LEAKY_BUCKET};
    for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
        rk_limit_t lim = fx_limit(algs[a], 10, MINUTE, 10);
        rk_cell_t cell = {0};
        rk_decision_t d = fx_decide(&lim, &cell, T0, 3);
        rk_cell_refund(&lim, &cell, d.at_ms, 3);
        cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, T0), 0, "%s", rk_algorithm_name(algs[a]));
    }
}

Test(refund, fixed_window_gives_back_to_the_window_counted_in_never_another) {
    rk_limit_t lim = fx_limit(RK_ALG_FIXED_WINDOW, 3, MINUTE, 3);
    rk_cell_t cell = {0};
    int64_t end = minute_start() + MINUTE;
    rk_decision_t old = fx_decide(&lim, &cell, end - 1, 1); /* the last ms of a window */
    cr_assert(fx_decide(&lim, &cell, end, 3).allowed);      /* the next window, full */
    rk_cell_refund(&lim, &cell, old.at_ms, 1);              /* rolled over: nothing */
    cr_assert_eq(fx_try(&lim, &cell, end, 0).remaining, 0);
    /* Within its window, what it counted comes back, and no more (never below 0). */
    rk_cell_t one = {0};
    rk_decision_t d = fx_decide(&lim, &one, end + 5, 1);
    rk_cell_refund(&lim, &one, d.at_ms, 5);
    cr_assert_eq(fx_try(&lim, &one, end + 6, 0).remaining, 3);
}

Test(refund, sliding_window_gives_back_to_its_current_window_never_the_next) {
    rk_limit_t lim = fx_limit(RK_ALG_SLIDING_WINDOW, 4, MINUTE, 4);
    rk_cell_t cell = {0};
    int64_t end = minute_start() + MINUTE;
    cr_assert(fx_decide(&lim, &cell, end - 10, 1).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, end - 5, 2);
    rk_cell_t rolled = cell;
    rk_cell_refund(&lim, &cell, d.at_ms, 2); /* the same window: curr 3 -> 1 */
    cr_assert_eq(fx_try(&lim, &cell, end - 1, 0).remaining, 3);
    cr_assert(fx_decide(&lim, &rolled, end, 1).allowed); /* a later request moves the state on */
    rk_cell_t after = rolled;
    rk_cell_refund(&lim, &rolled, d.at_ms, 2); /* its window is the previous one now: nothing */
    cr_assert(memcmp(&rolled, &after, sizeof rolled) == 0);
}

Test(refund, gcra_moves_tat_back_by_cost_times_t_never_below_now) {
    rk_limit_t lim = fx_limit(RK_ALG_GCRA, 3, 1000, 3); /* T = 333.33 ms: ticks borrow */
    rk_cell_t cell = {0};
    cr_assert(fx_decide(&lim, &cell, T0, 2).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, T0 + 100, 1);
    rk_cell_refund(&lim, &cell, d.at_ms, 1);
    /* tat = T0 + 666.67: after 100 ms, 566.67 ms ahead */
    cr_assert_eq(fx_try(&lim, &cell, T0 + 100, 0).reset_ms, 567);
    /* A refund of more than was taken stops at a full bucket. */
    rk_cell_refund(&lim, &cell, T0 + 100, 3);
    cr_assert_eq(fx_try(&lim, &cell, T0 + 100, 0).remaining, 3);
    cr_assert_eq(rk_cell_ttl_ms(&lim, &cell, T0 + 100), 0);
    /* A tat already behind the refund's time gives nothing back. */
    rk_cell_t past = {0};
    cr_assert(fx_decide(&lim, &past, T0, 1).allowed);
    rk_cell_t kept = past;
    rk_cell_refund(&lim, &past, T0 + 5000, 1);
    cr_assert(memcmp(&past, &kept, sizeof past) == 0);
}

Test(refund, leaky_bucket_gives_back_a_shaped_requests_place_in_the_queue) {
    rk_limit_t lim = fx_limit(RK_ALG_LEAKY_BUCKET, 1, 1000, 5);
    lim.shape = true;
    rk_cell_t cell = {0};
    for (int i = 0; i < 3; i++)
        cr_assert(fx_decide(&lim, &cell, T0, 1).allowed);
    rk_decision_t d = fx_decide(&lim, &cell, T0, 1);
    cr_assert_eq(d.delay_ms, 3000);
    rk_cell_refund(&lim, &cell, d.at_ms, 1);
    cr_assert_eq(fx_try(&lim, &cell, T0, 1).delay_ms, 3000, "the next one takes its place");
}

Test(refund, sliding_log_removes_the_entries_the_request_added_only) {
    rk_limit_t lim = fx_limit(RK_ALG_SLIDING_LOG, 10, MINUTE, 10);
    rk_log_t log = {0};
    rk_decision_t d;
    cr_assert_eq(rk_log_decide(&lim, &log, T0, 2, &d), RK_OK);
    cr_assert_eq(rk_log_decide(&lim, &log, T0 + 5, 3, &d), RK_OK);
    int64_t at = d.at_ms;
    cr_assert_eq(rk_log_decide(&lim, &log, T0 + 9, 1, &d), RK_OK); /* a later request's */
    rk_log_refund(&log, at, 3);
    cr_assert_eq(log.len, 3);
    cr_assert_eq(log.newest_ms, T0 + 9);
    cr_assert_eq(rk_log_decide(&lim, &log, T0 + 9, 0, &d), RK_OK);
    cr_assert_eq(d.remaining, 7);
    /* A second refund finds none of the request's entries left. */
    rk_log_refund(&log, at, 3);
    cr_assert_eq(log.len, 3);
    rk_log_free(&log);
}

Test(refund, memory_store_refunds_every_algorithm_and_ends_the_lease) {
    rk_store_t *s = rk_memory_store_new(1000);
    for (int alg = 0; alg < RK_ALG_COUNT; alg++) {
        rk_limit_t lim = fx_limit((rk_algorithm_t)alg, 5, MINUTE, 5);
        rk_store_req_t reqs[3];
        rk_decision_t out[3];
        char ids[3][RK_LEASE_ID_LEN + 1];
        for (int i = 0; i < 3; i++) {
            snprintf(ids[i], sizeof ids[i], "%032x", i + 1);
            reqs[i] = (rk_store_req_t){.rule_id = "r",
                                       .key = "k",
                                       .limit = lim,
                                       .cost = 1,
                                       .now_ms = T0 + i,
                                       .lease_id = ids[i]};
            cr_assert_eq(s->ops->decide(s, &reqs[i], 1, &out[i]), RK_OK);
            cr_assert(out[i].allowed);
        }
        rk_store_req_t refund = reqs[2];
        refund.refund = true;
        refund.now_ms = out[2].at_ms;
        rk_decision_t r;
        cr_assert_eq(s->ops->decide(s, &refund, 1, &r), RK_OK);
        cr_assert(r.allowed);
        rk_store_req_t peek = reqs[2];
        peek.cost = 0;
        peek.lease_id = NULL;
        rk_decision_t p;
        cr_assert_eq(s->ops->decide(s, &peek, 1, &p), RK_OK);
        cr_assert_eq(p.remaining, 3, "%s: remaining %" PRId64, rk_algorithm_name(lim.algorithm),
                     p.remaining);
        /* Refunding the other two leaves no key behind. */
        for (int i = 0; i < 2; i++) {
            refund = reqs[i];
            refund.refund = true;
            refund.now_ms = out[i].at_ms;
            cr_assert_eq(s->ops->decide(s, &refund, 1, &r), RK_OK);
        }
        cr_assert_eq(s->ops->key_count(s), 0, "%s: %" PRId64 " keys left",
                     rk_algorithm_name(lim.algorithm), s->ops->key_count(s));
    }
    s->ops->destroy(s);
}
