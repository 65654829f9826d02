/*
 * breaker.c — see breaker.h.
 */
#include "breaker.h"

void rk_breaker_init(rk_breaker_t *b, int threshold, int64_t cooldown_ms, int64_t max_cooldown_ms) {
    atomic_init(&b->failures, 0);
    atomic_init(&b->open_until_ms, 0);
    atomic_init(&b->cooldown_ms, cooldown_ms);
    atomic_init(&b->probing, false);
    b->threshold = threshold;
    b->base_cooldown_ms = cooldown_ms;
    b->max_cooldown_ms = max_cooldown_ms;
}

rk_breaker_ticket_t rk_breaker_enter(rk_breaker_t *b, int64_t now_ms, bool may_probe) {
    if (RK_LIKELY(atomic_load_explicit(&b->failures, memory_order_relaxed) < b->threshold))
        return RK_BREAKER_PASS;
    if (!may_probe || now_ms < atomic_load(&b->open_until_ms))
        return RK_BREAKER_REJECT;
    bool expected = false;
    if (atomic_compare_exchange_strong(&b->probing, &expected, true))
        return RK_BREAKER_PROBE;
    return RK_BREAKER_REJECT;
}

/*
 * A failure while closed first moves the reopening time, then counts: a
 * thread that sees the count reach the threshold also sees a cool-down
 * that has not ended yet.
 */
rk_breaker_change_t rk_breaker_done(rk_breaker_t *b, rk_breaker_ticket_t ticket, bool ok,
                                    int64_t now_ms) {
    if (ticket == RK_BREAKER_PROBE) {
        if (ok) {
            atomic_store(&b->cooldown_ms, b->base_cooldown_ms);
            atomic_store(&b->failures, 0);
            atomic_store(&b->probing, false);
            return RK_BREAKER_CLOSED;
        }
        int64_t cooldown = atomic_load(&b->cooldown_ms) * 2;
        if (cooldown > b->max_cooldown_ms)
            cooldown = b->max_cooldown_ms;
        atomic_store(&b->cooldown_ms, cooldown);
        atomic_store(&b->open_until_ms, now_ms + cooldown);
        atomic_store(&b->probing, false);
        return RK_BREAKER_SAME;
    }
    if (ok) {
        /* Only write when there is something to undo: the hot path stays read-only. */
        if (RK_UNLIKELY(atomic_load_explicit(&b->failures, memory_order_relaxed) != 0)) {
            int was = atomic_exchange(&b->failures, 0);
            if (was >= b->threshold)
                return RK_BREAKER_CLOSED;
        }
        return RK_BREAKER_SAME;
    }
    if (atomic_load(&b->failures) < b->threshold)
        atomic_store(&b->open_until_ms, now_ms + b->base_cooldown_ms);
    int now_failures = atomic_fetch_add(&b->failures, 1) + 1;
    return now_failures == b->threshold ? RK_BREAKER_OPENED : RK_BREAKER_SAME;
}

bool rk_breaker_closed(rk_breaker_t *b) {
    return atomic_load_explicit(&b->failures, memory_order_relaxed) < b->threshold;
}
