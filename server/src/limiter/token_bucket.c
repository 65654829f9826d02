/*
 * token_bucket.c — a bucket of `burst` tokens refilled at limit/window.
 *
 * Unit: the token-millisecond. One token is window_ms units and the bucket
 * refills `limit` units per ms, so the refill is exact integer arithmetic
 * (window 1000, limit 3: exactly 3 tokens per second, never 3 per 999 ms).
 * The capacity is burst*window_ms < 2^53 units (see limiter.h).
 *
 * State (rk_cell_t): the time the bucket is full again, "full at" =
 * a + b/limit ms (a whole ms, b the remainder in units, 0..limit-1); an
 * all-zero cell is a full bucket. At time now the bucket misses
 * used = (full_at - now)*limit units, 0 when full_at has passed, and at most
 * the capacity. One number rather than (used, last refill), so that Redis
 * keeps it as one integer (lua/token_bucket.lua, lua/README.md). It is
 * GCRA's theoretical arrival time, with tau = the capacity: the decisions are
 * those of gcra.c, which computes them.
 *
 * With used' the units missing before the request:
 * - allowed iff cost <= burst and used' + cost*window <= burst*window;
 * - remaining = floor((burst*window - used'')/window), used'' after the request;
 * - reset_ms = ceil(used''/limit), the time until the bucket is full again;
 * - retry_after_ms = ceil((used' + cost*window - burst*window)/limit), after
 *   which exactly enough has refilled; cost > burst never passes.
 * - ttl = reset_ms (a full bucket is the same as no state).
 *
 * A clock running backwards is clamped to full_at - capacity/limit, the
 * earliest time the state can have been written at: the bucket never looks
 * emptier than empty. A fresh key admits `burst` requests at once, then one
 * per window/limit ms.
 */
#include "limiter_internal.h"

void rk_token_bucket_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out) {
    rk_gcra_decide(lim, cell, now_ms, cost, out);
}

int64_t rk_token_bucket_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    return rk_gcra_ttl_ms(lim, cell, now_ms);
}
