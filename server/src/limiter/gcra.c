/*
 * gcra.c — the generic cell rate algorithm: one theoretical arrival time.
 *
 * Unit: the tick, 1/limit of a millisecond. The emission interval
 * T = window/limit ms is then exactly window_ms ticks and the tolerance
 * tau = T*burst is burst*window_ms ticks (< 2^53, see limiter.h). Absolute
 * times are kept in ms plus a remainder in ticks, so that only differences
 * are ever multiplied by limit.
 *
 * State (rk_cell_t): tat = a + b/limit ms, with a = whole ms and b = ticks
 * (0..limit-1). An all-zero cell is a fresh key. Lua: "<tat_ms>:<ticks>".
 *
 * With d = max(tat - now, 0) in ticks and need = cost*T:
 * - allowed iff cost <= burst and d + need <= tau, then tat = now + d + need
 *   (DESIGN.md: new_tat = max(tat, now) + T*cost, allowed iff
 *   new_tat - now <= tau). A fresh key admits exactly `burst` requests at
 *   once (burst counted as in the token bucket), then one per T;
 * - remaining = floor((tau - d'')/T), d'' after the request;
 * - reset_ms = ceil(d''/limit), the time until tat is reached;
 * - retry_after_ms = ceil((d + need - tau)/limit), computed as
 *   d - (tau - need) so that no intermediate exceeds tau; cost > burst never
 *   passes.
 * - ttl = reset_ms (a tat in the past is the same as no state).
 * - refund (rk_cell_refund): tat -= cost*T, never below now.
 *
 * A clock running backwards is clamped to tat - tau, the earliest time the
 * state can have been written at: d never exceeds tau. For a clock that does
 * not run backwards every decision equals token_bucket's.
 */
#include "limiter_internal.h"

#include <string.h>

/* tat is at most now + tau/limit ms: below 2^53 too. */
#define GCRA_TAT_MS_MAX (RK_NOW_MS_MAX + RK_BURST_MAX * RK_WINDOW_MS_MAX)

typedef struct {
    int64_t now; /* bounded */
    int64_t d;   /* tat - now in ticks, 0..tau */
    int64_t tau; /* burst*window ticks */
} gcra_view_t;

/* Reads the cell as of now_ms (never writes it). */
static gcra_view_t gcra_view(const rk_bounded_t *b, const rk_cell_t *cell, int64_t now_ms) {
    gcra_view_t v;
    int64_t tat_ms = rk_clamp(cell->a, 0, GCRA_TAT_MS_MAX);
    int64_t ticks = rk_clamp(cell->b, 0, b->limit - 1);
    v.now = rk_bound_now(now_ms);
    v.tau = b->burst * b->window_ms;
    v.d = 0;
    if (tat_ms >= v.now) {
        int64_t ahead_ms = tat_ms - v.now;
        /* Past ceil(tau/limit) ms ahead, d is clamped anyway: do not multiply. */
        if (ahead_ms > rk_ceil_div(v.tau, b->limit))
            v.d = v.tau;
        else
            v.d = rk_min64(ahead_ms * b->limit + ticks, v.tau);
    }
    return v;
}

void rk_gcra_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                    rk_decision_t *out) {
    rk_bounded_t b = rk_bounded(lim);
    gcra_view_t v = gcra_view(&b, cell, now_ms);
    cost = rk_bound_cost(cost);

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    int64_t need = cost <= b.burst ? cost * b.window_ms : -1;
    out->allowed = need >= 0 && v.d <= v.tau - need;
    if (out->allowed && cost > 0) {
        v.d += need;
        cell->a = v.now + v.d / b.limit;
        cell->b = v.d % b.limit;
        cell->c = 0;
    }
    out->remaining = (v.tau - v.d) / b.window_ms;
    out->reset_ms = rk_ceil_div(v.d, b.limit);
    if (!out->allowed)
        out->retry_after_ms = need < 0 ? rk_retry_never(out->reset_ms, b.window_ms)
                                       : rk_ceil_div(v.d - (v.tau - need), b.limit);
}

/*
 * Refund: tat -= cost*T, never below at_ms (a tat at or before at_ms is a
 * full bucket: the fresh cell). Done on (ms, ticks) with a borrow, so that
 * no absolute time is ever multiplied by limit; a tat already before at_ms
 * gives nothing back.
 */
void rk_gcra_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost) {
    rk_bounded_t b = rk_bounded(lim);
    int64_t now = rk_bound_now(at_ms);
    int64_t tat_ms = rk_clamp(cell->a, 0, GCRA_TAT_MS_MAX);
    int64_t ticks = rk_clamp(cell->b, 0, b.limit - 1);
    if (tat_ms < now)
        return;
    int64_t need = rk_min64(rk_bound_cost(cost), b.burst) * b.window_ms;
    int64_t need_ms = need / b.limit;
    ticks -= need % b.limit;
    if (ticks < 0) {
        ticks += b.limit;
        need_ms++;
    }
    tat_ms -= need_ms;
    if (tat_ms < now || (tat_ms == now && ticks == 0)) {
        memset(cell, 0, sizeof *cell);
        return;
    }
    cell->a = tat_ms;
    cell->b = ticks;
    cell->c = 0;
}

int64_t rk_gcra_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    rk_bounded_t b = rk_bounded(lim);
    gcra_view_t v = gcra_view(&b, cell, now_ms);
    return rk_ceil_div(v.d, b.limit);
}
