/*
 * breaker.h — a circuit breaker shared by every thread of one store.
 *
 * Closed: calls pass. After `threshold` consecutive failures it opens: calls
 * are refused at once for a cool-down; then one call at a time of those that
 * may probe (the store's prober) is let through as a probe. A probe that succeeds closes the
 * breaker; one that fails reopens it for a longer cool-down (doubling up to a maximum). Lock free:
 * the state is a few atomics, read on every call, written on failures and on the first success
 * after them.
 */
#ifndef RK_BREAKER_H
#define RK_BREAKER_H

#include <stdatomic.h>

#include "../common.h"

typedef struct {
    atomic_int failures;        /* consecutive */
    atomic_llong open_until_ms; /* monotonic ms; meaningful while open */
    atomic_llong cooldown_ms;   /* the next cool-down after a failed probe */
    atomic_bool probing;        /* a probe is in flight */
    int threshold;
    int64_t base_cooldown_ms, max_cooldown_ms;
} rk_breaker_t;

/* What a call may do. */
typedef enum {
    RK_BREAKER_PASS,  /* closed: go ahead */
    RK_BREAKER_PROBE, /* half-open: go ahead, the only call doing so */
    RK_BREAKER_REJECT /* open: fail at once */
} rk_breaker_ticket_t;

/* What an outcome did to the breaker (for logging transitions once). */
typedef enum { RK_BREAKER_SAME, RK_BREAKER_OPENED, RK_BREAKER_CLOSED } rk_breaker_change_t;

void rk_breaker_init(rk_breaker_t *b, int threshold, int64_t cooldown_ms, int64_t max_cooldown_ms);

/* Asks to make a call at now_ms (monotonic); a caller that may not probe
 * (a client's check, when a prober of its own probes) is refused while open. */
rk_breaker_ticket_t rk_breaker_enter(rk_breaker_t *b, int64_t now_ms, bool may_probe);

/* Reports the outcome of a call that was let through (PASS or PROBE). */
rk_breaker_change_t rk_breaker_done(rk_breaker_t *b, rk_breaker_ticket_t ticket, bool ok,
                                    int64_t now_ms);

/* True while fewer than `threshold` consecutive failures were seen. */
bool rk_breaker_closed(rk_breaker_t *b);

#endif
