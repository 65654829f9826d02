/*
 * memory_state.h — the state an embedded-store entry holds (memory.c), and
 * the decisions made on it.
 *
 * A state is 24 bytes inside its entry. The algorithms whose state is a
 * cell (all but sliding_log and concurrency) keep their rk_cell_t there. The states of
 * sliding_log and concurrency vary in size: a small one is packed into
 * those 24 bytes, a larger one lives in a box of its own (an rk_log_t or
 * rk_lease_set_t on the heap) that the state points to.
 * - Packed sliding_log: at most 2 entries. The log keeps copies of its
 *   oldest and newest entries, which are then all of it.
 * - Packed concurrency: at most one lease, whose id is 32 lowercase hex
 *   digits (as ratekitd draws them): the id as 16 bytes, its expiry and
 *   units in one word.
 * Most keys of a large keyspace make a request or two in a window: they
 * cost no allocation and no memory beyond their entry. A state that
 * outgrows its packed form is boxed, and stays boxed until it is freed.
 */
#ifndef RK_MEMORY_STATE_H
#define RK_MEMORY_STATE_H

#include "../limiter/limiter.h"

typedef union {
    rk_cell_t cell;         /* every algorithm but sliding_log and concurrency */
    rk_log_t *log;          /* sliding_log, boxed: owned */
    rk_lease_set_t *leases; /* concurrency, boxed: owned */
    uint64_t word[3];       /* sliding_log or concurrency, packed (word[0] odd) */
} rk_entry_state_t;

/* A state "never seen": all zero for a cell, packed and empty otherwise. */
void rk_state_init(rk_algorithm_t alg, rk_entry_state_t *st);

/* Frees what st owns (a box and its contents) and makes it "never seen". */
void rk_state_free(rk_algorithm_t alg, rk_entry_state_t *st);

/*
 * Decides one request on st, as the algorithm of lim does on its own state.
 * A concurrency request with cost > 0 acquires lease_id (required); cost 0
 * peeks. RK_ERR only on OOM, st then left as it was.
 */
rk_status_t rk_state_decide(const rk_limit_t *lim, rk_entry_state_t *st, int64_t now_ms,
                            int64_t cost, const char *lease_id, rk_decision_t *out);

/* How long after now_ms the state differs from a fresh one. */
int64_t rk_state_ttl_ms(const rk_limit_t *lim, const rk_entry_state_t *st, int64_t now_ms);

/*
 * Gives back what a request allowed at at_ms (its decision's at_ms) with
 * `cost` consumed (rk_cell_refund, rk_log_refund); for concurrency, ends
 * its lease lease_id. Never allocates: a state only shrinks.
 */
void rk_state_refund(const rk_limit_t *lim, rk_entry_state_t *st, int64_t at_ms, int64_t cost,
                     const char *lease_id);

/*
 * Ends a lease of a concurrency state (rk_lease_release); true if it was
 * live. *ttl_ms: how long after now_ms the state still differs from a fresh one.
 */
bool rk_state_release(rk_entry_state_t *st, int64_t now_ms, const char *lease_id, int64_t units,
                      int64_t *ttl_ms);

#endif
