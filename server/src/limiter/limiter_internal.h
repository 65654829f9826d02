/*
 * limiter_internal.h — what the algorithm files of limiter/ share: the
 * per-algorithm entry points behind rk_cell_decide()/rk_cell_ttl_ms(), and
 * the integer helpers every file (and every Lua script) computes with.
 *
 * Not for use outside server/src/limiter/.
 */
#ifndef RK_LIMITER_INTERNAL_H
#define RK_LIMITER_INTERNAL_H

#include "limiter.h"

/* ---- per-algorithm entry points (one file each) ---- */

void rk_fixed_window_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out);
void rk_fixed_window_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost);
int64_t rk_fixed_window_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

void rk_sliding_window_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                              rk_decision_t *out);
void rk_sliding_window_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost);
int64_t rk_sliding_window_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

void rk_token_bucket_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out);
int64_t rk_token_bucket_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

void rk_gcra_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                    rk_decision_t *out);
void rk_gcra_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost);
int64_t rk_gcra_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

void rk_leaky_bucket_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                            rk_decision_t *out);
void rk_leaky_bucket_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost);
int64_t rk_leaky_bucket_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

/* ---- integer helpers ---- */

/* The limit with every field forced into its bounds (defence in depth: the
 * arithmetic below is only overflow-free inside them). The Lua scripts clamp
 * their ARGV the same way. */
typedef struct {
    int64_t limit, window_ms, burst;
} rk_bounded_t;

static inline int64_t rk_clamp(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

static inline rk_bounded_t rk_bounded(const rk_limit_t *lim) {
    rk_bounded_t b = {rk_clamp(lim->limit, 1, RK_LIMIT_MAX),
                      rk_clamp(lim->window_ms, 1, RK_WINDOW_MS_MAX),
                      rk_clamp(lim->burst, 1, RK_BURST_MAX)};
    return b;
}

static inline int64_t rk_bound_now(int64_t now_ms) {
    return rk_clamp(now_ms, 0, RK_NOW_MS_MAX);
}

static inline int64_t rk_bound_cost(int64_t cost) {
    return rk_clamp(cost, 0, RK_COST_MAX);
}

/* a / b rounded up, for a >= 0, b > 0 (math.ceil(a / b) in Lua, which is
 * exact for a < 2^53). */
static inline int64_t rk_ceil_div(int64_t a, int64_t b) {
    return a / b + (a % b != 0);
}

static inline int64_t rk_max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

/*
 * A window rule's refund (fixed and sliding windows): the count of the
 * current window (cell->b, its start in cell->a) less cost, floored at 0,
 * when the cell still holds the window of at_ms (the decision's clamped
 * now); -1 when it moved to a later window, which gives nothing back.
 */
static inline int64_t rk_window_count_refunded(const rk_bounded_t *b, const rk_cell_t *cell,
                                               int64_t at_ms, int64_t cost) {
    if (rk_bound_now(at_ms) / b->window_ms * b->window_ms != rk_bound_now(cell->a))
        return -1;
    return rk_max64(0, rk_clamp(cell->b, 0, b->limit) - rk_bound_cost(cost));
}

static inline int64_t rk_min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* retry_after_ms of a request that can never pass (see limiter.h). */
static inline int64_t rk_retry_never(int64_t reset_ms, int64_t window_ms) {
    return rk_max64(reset_ms, window_ms);
}

#endif
