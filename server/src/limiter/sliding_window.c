/*
 * sliding_window.c — the counts of the current and the previous fixed
 * window, the previous one weighted by the share of it still inside the
 * sliding window.
 *
 * State (rk_cell_t): a = start of the current window (ms), b = units
 * admitted in it (curr), c = units admitted in the window before (prev).
 * Lua: the string "<window_start>:<curr>:<prev>".
 *
 * With elapsed = now - window_start (0..window-1) and the weight
 * w = window - elapsed (window..1), the estimate is prev*w/window + curr.
 * Everything is compared multiplied by window, so that no fraction is ever
 * rounded: prev*w and (limit - curr - cost)*window are both at most
 * limit*window < 2^53 (see limiter.h).
 *
 * now is clamped to >= the recorded window start. Counts recorded for a
 * window that is neither the current one nor the one before (or not aligned
 * to the current window size) count as 0.
 *
 * - allowed iff cost <= limit - curr and prev*w <= (limit - curr - cost)*window;
 * - remaining = limit - curr - ceil(prev*w/window), at least 0;
 * - reset_ms = until the estimate is 0: the end of the next window when
 *   curr > 0, the end of this one when only prev > 0, else 0;
 * - retry_after_ms: the estimate only falls with time, so this is the
 *   earliest elapsed' in this window with prev*(window - elapsed') <=
 *   (limit - curr - cost)*window, else the earliest point of the next window
 *   (where prev becomes curr and curr becomes 0), else the start of the
 *   window after (where both are 0). cost > limit never passes.
 * - ttl = reset_ms.
 * - refund (rk_cell_refund): curr of the window it was counted in.
 */
#include "limiter_internal.h"

#include <string.h>

typedef struct {
    int64_t now;          /* clamped */
    int64_t window_start; /* of now */
    int64_t elapsed;      /* now - window_start */
    int64_t curr, prev;   /* 0..limit */
} sliding_view_t;

/* Reads the cell as of now_ms (never writes it). */
static sliding_view_t sliding_view(const rk_bounded_t *b, const rk_cell_t *cell, int64_t now_ms) {
    sliding_view_t v;
    int64_t recorded = rk_bound_now(cell->a);
    v.now = rk_max64(rk_bound_now(now_ms), recorded);
    v.window_start = v.now / b->window_ms * b->window_ms;
    v.elapsed = v.now - v.window_start;
    v.curr = 0;
    v.prev = 0;
    if (v.window_start == recorded) {
        v.curr = rk_clamp(cell->b, 0, b->limit);
        v.prev = rk_clamp(cell->c, 0, b->limit);
    } else if (v.window_start == recorded + b->window_ms) {
        v.prev = rk_clamp(cell->b, 0, b->limit);
    }
    return v;
}

static int64_t sliding_reset_ms(const rk_bounded_t *b, const sliding_view_t *v) {
    if (v->curr > 0)
        return 2 * b->window_ms - v->elapsed;
    if (v->prev > 0)
        return b->window_ms - v->elapsed;
    return 0;
}

/*
 * Earliest delay (ms) after which `cost` units would pass, for a request
 * that is denied now and has cost <= limit.
 */
static int64_t sliding_retry_ms(const rk_bounded_t *b, const sliding_view_t *v, int64_t cost) {
    int64_t w = b->window_ms;
    int64_t room = b->limit - v->curr - cost;
    if (room >= 0 && v->prev > 0) {
        /* prev*(w - e) <= room*w  <=>  e >= w - floor(room*w/prev) */
        int64_t e1 = w - room * w / v->prev;
        if (e1 < w)
            return e1 - v->elapsed;
    }
    /* In the next window prev is our curr and curr is 0. */
    int64_t e2 = 0;
    if (v->curr > 0)
        e2 = rk_max64(0, w - (b->limit - cost) * w / v->curr);
    if (e2 < w)
        return w - v->elapsed + e2;
    return 2 * w - v->elapsed;
}

void rk_sliding_window_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                              rk_decision_t *out) {
    rk_bounded_t b = rk_bounded(lim);
    sliding_view_t v = sliding_view(&b, cell, now_ms);
    cost = rk_bound_cost(cost);
    int64_t weight = b.window_ms - v.elapsed;

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    out->allowed =
        cost <= b.limit - v.curr && v.prev * weight <= (b.limit - v.curr - cost) * b.window_ms;
    if (out->allowed && cost > 0) {
        v.curr += cost;
        cell->a = v.window_start;
        cell->b = v.curr;
        cell->c = v.prev;
    }
    out->remaining = rk_max64(0, b.limit - v.curr - rk_ceil_div(v.prev * weight, b.window_ms));
    out->reset_ms = sliding_reset_ms(&b, &v);
    if (!out->allowed)
        out->retry_after_ms = cost > b.limit ? rk_retry_never(out->reset_ms, b.window_ms)
                                             : sliding_retry_ms(&b, &v, cost);
}

/*
 * Refund: takes cost off curr when the cell still holds the window of at_ms
 * (the decision's clamped now), floored at 0; a cell that moved to a later
 * window gives nothing back. No count left is a fresh cell.
 */
void rk_sliding_window_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost) {
    rk_bounded_t b = rk_bounded(lim);
    int64_t curr = rk_window_count_refunded(&b, cell, at_ms, cost);
    if (curr < 0)
        return;
    int64_t prev = rk_clamp(cell->c, 0, b.limit);
    if (curr == 0 && prev == 0) {
        memset(cell, 0, sizeof *cell);
        return;
    }
    cell->b = curr;
    cell->c = prev;
}

int64_t rk_sliding_window_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    rk_bounded_t b = rk_bounded(lim);
    sliding_view_t v = sliding_view(&b, cell, now_ms);
    return sliding_reset_ms(&b, &v);
}
