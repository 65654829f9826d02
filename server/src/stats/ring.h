/*
 * ring.h — the last RK_RING_SECONDS seconds of decision counts, one slot
 * per second, each holding the rules that had traffic in that second.
 *
 * Pure data structure, no locking: stats.c guards it with its own mutex.
 * Seconds are epoch seconds; a slot remembers which second it holds, so a
 * second that was never written (or was overwritten by one 15 minutes
 * later) reads as empty.
 */
#ifndef RK_STATS_RING_H
#define RK_STATS_RING_H

#include "../common.h"

#define RK_RING_SECONDS 900
#define RK_STAT_FIELDS 4 /* allowed, denied, shadow_denied, errors */
/*
 * The slot of the checks' own counts (requests asked about, each once,
 * however many rules covered it; shadow_denied unused): an entry like a
 * rule's, sorted last, so that it goes wherever a second's entries go, but
 * left out of the totals, which sum the rules' decisions.
 */
#define RK_RING_CHECKS UINT32_MAX

/* The counts of one rule in one second. slot is the rule's stats slot. */
typedef struct {
    uint32_t slot;
    uint64_t n[RK_STAT_FIELDS];
} rk_ring_entry_t;

typedef struct {
    int64_t t; /* epoch second held; 0: never written */
    size_t len;
    rk_ring_entry_t *entries;        /* owned; sorted by slot */
    uint64_t totals[RK_STAT_FIELDS]; /* of the rules' entries (not RK_RING_CHECKS) */
    uint64_t checks[RK_STAT_FIELDS]; /* the RK_RING_CHECKS entry's counts */
} rk_ring_second_t;

typedef struct {
    rk_ring_second_t sec[RK_RING_SECONDS];
} rk_ring_t;

/* Where second t lives in the ring (t may be any epoch second, even negative). */
size_t rk_ring_index(int64_t t);

/*
 * Replaces second t with a copy of entries (any order; entries with the same
 * slot are added together). RK_ERR when out of memory (the second is then empty).
 */
rk_status_t rk_ring_put(rk_ring_t *r, int64_t t, const rk_ring_entry_t *entries, size_t len);

/* Second t, or NULL when the ring does not hold it. */
const rk_ring_second_t *rk_ring_get(const rk_ring_t *r, int64_t t);

/*
 * Adds the counts of seconds from..to (inclusive) into totals, when
 * per_slot is not NULL into per_slot[slot] (nslots rows; larger slots are
 * ignored), and when checks is not NULL the check counts into checks.
 * Seconds the ring does not hold count as zero.
 */
void rk_ring_sum(const rk_ring_t *r, int64_t from, int64_t to, uint64_t totals[RK_STAT_FIELDS],
                 uint64_t (*per_slot)[RK_STAT_FIELDS], size_t nslots,
                 uint64_t checks[RK_STAT_FIELDS]);

/*
 * The counts of one slot (RK_RING_CHECKS: the checks; slot < 0: the totals)
 * in second t; zeros when absent.
 */
void rk_ring_counts(const rk_ring_t *r, int64_t t, long slot, uint64_t out[RK_STAT_FIELDS]);

/* Removes the entries of slot from every second (its rule is gone); totals stay. */
void rk_ring_drop_slot(rk_ring_t *r, uint32_t slot);

/* Frees every second's entries and empties the ring. */
void rk_ring_clear(rk_ring_t *r);

#endif
