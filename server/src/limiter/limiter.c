/*
 * limiter.c — algorithm names and the dispatch of the fixed-size-state
 * algorithms to their files.
 */
#include "limiter_internal.h"

#include <string.h>

static const char *const algorithm_names[RK_ALG_COUNT] = {
    [RK_ALG_FIXED_WINDOW] = "fixed_window",
    [RK_ALG_SLIDING_WINDOW] = "sliding_window",
    [RK_ALG_SLIDING_LOG] = "sliding_log",
    [RK_ALG_TOKEN_BUCKET] = "token_bucket",
    [RK_ALG_GCRA] = "gcra",
    [RK_ALG_LEAKY_BUCKET] = "leaky_bucket",
    [RK_ALG_CONCURRENCY] = "concurrency",
};

const char *rk_algorithm_name(rk_algorithm_t alg) {
    if ((int)alg < 0 || alg >= RK_ALG_COUNT)
        return NULL;
    return algorithm_names[alg];
}

rk_status_t rk_algorithm_parse(const char *name, rk_algorithm_t *out) {
    if (!name)
        return RK_ERR;
    for (int i = 0; i < RK_ALG_COUNT; i++) {
        if (strcmp(name, algorithm_names[i]) == 0) {
            *out = (rk_algorithm_t)i;
            return RK_OK;
        }
    }
    return RK_ERR;
}

/*
 * Dispatches to the algorithm of lim. An algorithm without a cell state
 * (sliding_log, concurrency) is a caller's mistake: it is denied, so that the
 * mistake fails closed, and the cell is left alone.
 */
void rk_cell_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                    rk_decision_t *out) {
    switch (lim->algorithm) {
    case RK_ALG_FIXED_WINDOW:
        rk_fixed_window_decide(lim, cell, now_ms, cost, out);
        return;
    case RK_ALG_SLIDING_WINDOW:
        rk_sliding_window_decide(lim, cell, now_ms, cost, out);
        return;
    case RK_ALG_TOKEN_BUCKET:
        rk_token_bucket_decide(lim, cell, now_ms, cost, out);
        return;
    case RK_ALG_GCRA:
        rk_gcra_decide(lim, cell, now_ms, cost, out);
        return;
    case RK_ALG_LEAKY_BUCKET:
        rk_leaky_bucket_decide(lim, cell, now_ms, cost, out);
        return;
    default:
        break;
    }
    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = -1;
    out->retry_after_ms = rk_max64(lim->window_ms, 1);
}

void rk_cell_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost) {
    switch (lim->algorithm) {
    case RK_ALG_FIXED_WINDOW:
        rk_fixed_window_refund(lim, cell, at_ms, cost);
        return;
    case RK_ALG_SLIDING_WINDOW:
        rk_sliding_window_refund(lim, cell, at_ms, cost);
        return;
    case RK_ALG_TOKEN_BUCKET:
    case RK_ALG_GCRA:
        rk_gcra_refund(lim, cell, at_ms, cost);
        return;
    case RK_ALG_LEAKY_BUCKET:
        rk_leaky_bucket_refund(lim, cell, at_ms, cost);
        return;
    default:
        return;
    }
}

int64_t rk_cell_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms) {
    switch (lim->algorithm) {
    case RK_ALG_FIXED_WINDOW:
        return rk_fixed_window_ttl_ms(lim, cell, now_ms);
    case RK_ALG_SLIDING_WINDOW:
        return rk_sliding_window_ttl_ms(lim, cell, now_ms);
    case RK_ALG_TOKEN_BUCKET:
        return rk_token_bucket_ttl_ms(lim, cell, now_ms);
    case RK_ALG_GCRA:
        return rk_gcra_ttl_ms(lim, cell, now_ms);
    case RK_ALG_LEAKY_BUCKET:
        return rk_leaky_bucket_ttl_ms(lim, cell, now_ms);
    default:
        return 0;
    }
}
