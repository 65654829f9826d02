/*
 * leaky_bucket.c — a bucket of capacity `burst` that leaks limit/window;
 * each request pours its cost in. With shape, the bucket is a queue and the
 * answer says how long the request waits in it (nginx limit_req).
 *
 * Unit: the request-millisecond, as in token_bucket.c: one request is
 * window_ms units and the bucket leaks `limit` units per ms, exactly.
 *
 * State (rk_cell_t): a = level (units), b = time of the last write (ms).
 * Lua: the string "<level>:<last_ms>".
 *
 * now is clamped to >= last. With level' = max(0, level - (now - last)*limit):
 * - allowed iff cost <= burst and level' + cost*window <= burst*window
 *   ("the queue has room": it holds at most `burst` requests, counting the
 *   one being served), in both modes;
 * - delay_ms (shape only, when allowed) = ceil(level'/limit): the time for
 *   everything already in the queue to leak out, after which this request
 *   goes; so a burst of requests leaves at exactly limit/window (0, T, 2T,
 *   ... with T = window/limit). This is nginx `limit_req burst=N` without
 *   `nodelay` (whose burst counts the queue behind the request being served,
 *   i.e. nginx burst=N-1 is ours burst=N); without shape it is `nodelay`.
 *   The same requests are admitted either way; a full queue is denied.
 * - remaining = floor((burst*window - level'')/window), level'' after;
 * - reset_ms = ceil(level''/limit), until the bucket is empty;
 * - retry_after_ms = ceil((level' + cost*window - burst*window)/limit),
 *   computed without exceeding the capacity as in token_bucket.c;
 *   cost > burst never passes.
 * - ttl = reset_ms.
 * - refund (rk_cell_refund): the level the request poured in.
 */
#include "limiter_internal.h"

#include <string.h>

typedef struct {
    int64_t now;      /* clamped */
    int64_t level;    /* after leaking, 0..capacity */
    int64_t capacity; /* burst*window */
} leaky_view_t;

/* Reads the cell as of now_ms, leaked (never writes it). */
static leaky_view_t leaky_view(const rk_bounded_t *b, const rk_cell_t *cell, int64_t now_ms) {
    leaky_view_t v;
    int64_t last = rk_bound_now(cell->b);
    v.now = rk_max64(rk_bound_now(now_ms), last);
    v.capacity = b->burst * b->window_ms;
    v.level = rk_clamp(cell->a, 0, v.capacity);
    int64_t elapsed = v.now - last;
    if (elapsed >= rk_ceil_div(v.level, b->limit))
        v.level = 0;
    else
        v.level -= elapsed * b->limit;
    return v;
}

void rk_leaky_bucket_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out) {
    rk_bounded_t b = rk_bounded(lim);
    leaky_view_t v = leaky_view(&b, cell, now_ms);
    cost = rk_bound_cost(cost);

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    int64_t pour = cost <= b.burst ? cost * b.window_ms : -1;
    out->allowed = pour >= 0 && v.level <= v.capacity - pour;
    if (out->allowed && lim->shape)
        out->delay_ms = rk_ceil_div(v.level, b.limit);
    if (out->allowed && cost > 0) {
        v.level += pour;
        cell->a = v.level;
        cell->b = v.now;
        cell->c = 0;
    }
    out->remaining = (v.capacity - v.level) / b.window_ms;
    out->reset_ms = rk_ceil_div(v.level, b.limit);
    if (!out->allowed)
        out->retry_after_ms = pour < 0 ? rk_retry_never(out->reset_ms, b.window_ms)
                                       : rk_ceil_div(v.level - (v.capacity - pour), b.limit);
}

/*
 * Refund: the level leaked to at_ms (or to the last write, if later) less
 * the cost*window the request poured in, floored at 0 (an empty bucket is
 * the fresh cell). A shaped request's place in the queue is given back so.
 */
void rk_leaky_bucket_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost) {
    rk_bounded_t b = rk_bounded(lim);
    leaky_view_t v = leaky_view(&b, cell, at_ms);
    int64_t level = rk_max64(0, v.level - rk_min64(rk_bound_cost(cost), b.burst) * b.window_ms);
    if (level == 0) {
        memset(cell, 0, sizeof *cell);
        return;
    }
    cell->a = level;
    cell->b = v.now;
    cell->c = 0;
}

int64_t rk_leaky_bucket_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    rk_bounded_t b = rk_bounded(lim);
    leaky_view_t v = leaky_view(&b, cell, now_ms);
    return rk_ceil_div(v.level, b.limit);
}
