/*
 * fixed_window.c — a counter per window aligned to floor(now/window)*window.
 *
 * State (rk_cell_t): a = start of the window the count belongs to (ms),
 * b = units admitted in it. Lua: the string "<window_start>:<count>".
 *
 * now is clamped to >= the recorded window start (a clock running backwards
 * stays in the recorded window). A count recorded for another window (an
 * earlier one, or a start not aligned to the current window size after a
 * rule change) counts as 0.
 *
 * - allowed iff count + cost <= limit;
 * - remaining = limit - count (after the request);
 * - reset_ms = until the end of the window, or 0 when the count is 0;
 * - retry_after_ms = until the end of the window (the next window starts
 *   empty); cost > limit never passes.
 * - ttl = until the end of the window while the count is > 0.
 * - refund (rk_cell_refund): the count of the window it was counted in.
 */
#include "limiter_internal.h"

#include <string.h>

typedef struct {
    int64_t now;          /* clamped */
    int64_t window_start; /* of now */
    int64_t count;        /* admitted in that window, 0..limit */
} fixed_view_t;

/* Reads the cell as of now_ms (never writes it). */
static fixed_view_t fixed_view(const rk_bounded_t *b, const rk_cell_t *cell, int64_t now_ms) {
    fixed_view_t v;
    v.now = rk_max64(rk_bound_now(now_ms), rk_bound_now(cell->a));
    v.window_start = v.now / b->window_ms * b->window_ms;
    v.count = v.window_start == cell->a ? rk_clamp(cell->b, 0, b->limit) : 0;
    return v;
}

void rk_fixed_window_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out) {
    rk_bounded_t b = rk_bounded(lim);
    fixed_view_t v = fixed_view(&b, cell, now_ms);
    cost = rk_bound_cost(cost);
    int64_t to_window_end = v.window_start + b.window_ms - v.now;

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    out->allowed = cost <= b.limit - v.count;
    if (out->allowed && cost > 0) {
        v.count += cost;
        cell->a = v.window_start;
        cell->b = v.count;
        cell->c = 0;
    }
    out->remaining = b.limit - v.count;
    out->reset_ms = v.count > 0 ? to_window_end : 0;
    if (!out->allowed)
        out->retry_after_ms =
            cost > b.limit ? rk_retry_never(out->reset_ms, b.window_ms) : to_window_end;
}

/*
 * Refund: takes cost off the count when the cell still holds the window of
 * at_ms (the decision's clamped now), floored at 0; a cell that moved to a
 * later window gives nothing back. A count back to 0 is a fresh cell.
 */
void rk_fixed_window_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost) {
    rk_bounded_t b = rk_bounded(lim);
    int64_t count = rk_window_count_refunded(&b, cell, at_ms, cost);
    if (count < 0)
        return;
    if (count == 0)
        memset(cell, 0, sizeof *cell);
    else
        cell->b = count;
}

int64_t rk_fixed_window_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    rk_bounded_t b = rk_bounded(lim);
    fixed_view_t v = fixed_view(&b, cell, now_ms);
    return v.count > 0 ? v.window_start + b.window_ms - v.now : 0;
}
