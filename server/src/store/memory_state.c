/*
 * memory_state.c — packed and boxed states of the embedded store (see
 * memory_state.h).
 *
 * A packed state is unpacked into an rk_log_t or rk_lease_set_t on the
 * stack whose buffer is borrowed (a stack array of the packed capacity),
 * decided on by the algorithm's own code, and packed again when it still
 * fits; when it grew, the algorithm has moved it to a heap buffer, and the
 * state is boxed. So the algorithms have one implementation whatever the
 * form, and a packed state costs a few word copies per decision.
 *
 * Layout of a packed state (word[0] is odd; a box pointer is even, malloc
 * aligns it):
 * - sliding_log: word[0] = oldest_ms << 3 | len << 1 | 1 (len 0..2),
 *   word[1] = newest_ms. Entry times are clamped to RK_NOW_MS_MAX (2^47).
 * - concurrency: word[0] = expires_ms << 15 | units << 1 | 1 (units 0: no
 *   lease), word[1..2] = the lease id's 16 bytes. Expiries stay below 2^48
 *   and units at most RK_CONCURRENCY_LIMIT_MAX (below 2^14).
 */
#include "memory_state.h"

#include <stdlib.h>
#include <string.h>

#define PACKED UINT64_C(1)
#define PACKED_LOG_MAX 2 /* entries; a power of two, as a log's capacity */
#define UNITS_BITS 14
#define UNITS_MASK ((UINT64_C(1) << UNITS_BITS) - 1)
#define EXPIRY_SHIFT (UNITS_BITS + 1)
#define EXPIRY_MAX ((INT64_C(1) << 48) - 1)

_Static_assert(RK_CONCURRENCY_LIMIT_MAX <= (int64_t)UNITS_MASK, "units fit their bits");
_Static_assert(RK_NOW_MS_MAX + RK_WINDOW_MS_MAX <= EXPIRY_MAX, "expiries fit their bits");
_Static_assert(RK_LEASE_ID_BYTES == 16, "a packed lease id is 16 bytes");
_Static_assert(sizeof(rk_entry_state_t) == 24, "a state is 24 bytes");

static bool is_packed(const rk_entry_state_t *st) {
    return (st->word[0] & PACKED) != 0;
}

/* ---- sliding_log ---- */

static void log_unpack(const rk_entry_state_t *st, rk_log_t *log, int64_t buf[PACKED_LOG_MAX]) {
    int64_t oldest = (int64_t)(st->word[0] >> 3), newest = (int64_t)st->word[1];
    buf[0] = oldest;
    buf[1] = newest;
    *log = (rk_log_t){.ts = buf,
                      .cap = PACKED_LOG_MAX,
                      .len = (uint32_t)(st->word[0] >> 1) & 3,
                      .borrowed = true,
                      .oldest_ms = oldest,
                      .newest_ms = newest};
}

/* Stores an unpacked log back into st: packed if it fits, else boxed. */
static rk_status_t log_store(rk_entry_state_t *st, rk_log_t *log) {
    if (log->len <= PACKED_LOG_MAX) {
        uint64_t len = log->len;
        uint64_t oldest = len ? (uint64_t)log->oldest_ms : 0;
        uint64_t newest = len ? (uint64_t)log->newest_ms : 0;
        rk_log_free(log); /* a buffer it outgrew and then emptied */
        *st = (rk_entry_state_t){.word = {oldest << 3 | len << 1 | PACKED, newest}};
        return RK_OK;
    }
    rk_log_t *box = malloc(sizeof *box);
    if (!box) {
        rk_log_free(log);
        return RK_ERR;
    }
    *box = *log; /* more entries than the borrowed buffer holds: ts is the heap's */
    *st = (rk_entry_state_t){.log = box};
    return RK_OK;
}

static rk_status_t log_decide(const rk_limit_t *lim, rk_entry_state_t *st, int64_t now_ms,
                              int64_t cost, rk_decision_t *out) {
    if (!is_packed(st))
        return rk_log_decide(lim, st->log, now_ms, cost, out);
    rk_log_t log;
    int64_t buf[PACKED_LOG_MAX];
    log_unpack(st, &log, buf);
    if (rk_log_decide(lim, &log, now_ms, cost, out) != RK_OK)
        return RK_ERR; /* it failed to grow: the buffer is still borrowed */
    return log_store(st, &log);
}

/* ---- concurrency ---- */

static void leases_unpack(const rk_entry_state_t *st, rk_lease_set_t *set, rk_lease_t *lease) {
    int64_t units = (int64_t)(st->word[0] >> 1 & UNITS_MASK);
    *set = (rk_lease_set_t){.leases = lease, .cap = 1, .borrowed = true};
    if (units == 0)
        return;
    *lease = (rk_lease_t){.expires_ms = (int64_t)(st->word[0] >> EXPIRY_SHIFT),
                          .units = (int32_t)units,
                          .id_form = RK_LEASE_ID_HEX};
    memcpy(lease->id, &st->word[1], RK_LEASE_ID_BYTES);
    set->len = 1;
    set->units = units;
    set->first_expiry_ms = set->last_expiry_ms = lease->expires_ms;
}

/* Packs a set of at most one lease whose id is hex digits; false if it is not one. */
static bool leases_pack(const rk_lease_set_t *set, rk_entry_state_t *st) {
    uint32_t live = set->len - set->head;
    if (live == 0) {
        *st = (rk_entry_state_t){.word = {PACKED}};
        return true;
    }
    const rk_lease_t *l = &set->leases[set->head];
    if (live > 1 || l->units <= 0 || (uint64_t)l->units > UNITS_MASK || l->expires_ms < 0 ||
        l->expires_ms > EXPIRY_MAX || l->id_form != RK_LEASE_ID_HEX)
        return false;
    uint64_t word0 = (uint64_t)l->expires_ms << EXPIRY_SHIFT | (uint64_t)l->units << 1 | PACKED;
    *st = (rk_entry_state_t){.word = {word0}};
    memcpy(&st->word[1], l->id, RK_LEASE_ID_BYTES);
    return true;
}

/* Stores an unpacked set back into st: packed if it can be, else boxed. */
static rk_status_t leases_store(rk_entry_state_t *st, rk_lease_set_t *set) {
    if (leases_pack(set, st)) {
        rk_lease_set_free(set); /* a buffer it outgrew and then emptied */
        return RK_OK;
    }
    rk_lease_set_t *box = malloc(sizeof *box);
    rk_lease_t *own = set->borrowed ? malloc(sizeof *own) : NULL;
    if (!box || (set->borrowed && !own)) {
        free(box);
        free(own);
        rk_lease_set_free(set);
        return RK_ERR;
    }
    if (set->borrowed) { /* one lease whose id cannot be packed */
        *own = set->leases[0];
        set->leases = own;
        set->borrowed = false;
    }
    *box = *set;
    *st = (rk_entry_state_t){.leases = box};
    return RK_OK;
}

static rk_status_t leases_decide(const rk_limit_t *lim, rk_entry_state_t *st, int64_t now_ms,
                                 int64_t cost, const char *lease_id, rk_decision_t *out) {
    rk_lease_set_t unpacked, *set = st->leases;
    rk_lease_t lease;
    if (is_packed(st)) {
        leases_unpack(st, &unpacked, &lease);
        set = &unpacked;
    }
    rk_status_t rc = RK_OK;
    if (cost > 0)
        rc = rk_lease_acquire(lim, set, now_ms, cost, lease_id, out);
    else
        rk_lease_peek(lim, set, now_ms, out);
    if (set != &unpacked || rc != RK_OK)
        return rc; /* a failed acquire changed nothing: the buffer is still borrowed */
    return leases_store(st, set);
}

/* ---- any algorithm ---- */

void rk_state_init(rk_algorithm_t alg, rk_entry_state_t *st) {
    memset(st, 0, sizeof *st);
    if (alg == RK_ALG_SLIDING_LOG || alg == RK_ALG_CONCURRENCY)
        st->word[0] = PACKED;
}

void rk_state_free(rk_algorithm_t alg, rk_entry_state_t *st) {
    if (alg == RK_ALG_SLIDING_LOG && !is_packed(st) && st->log) {
        rk_log_free(st->log);
        free(st->log);
    } else if (alg == RK_ALG_CONCURRENCY && !is_packed(st) && st->leases) {
        rk_lease_set_free(st->leases);
        free(st->leases);
    }
    rk_state_init(alg, st);
}

rk_status_t rk_state_decide(const rk_limit_t *lim, rk_entry_state_t *st, int64_t now_ms,
                            int64_t cost, const char *lease_id, rk_decision_t *out) {
    switch (lim->algorithm) {
    case RK_ALG_SLIDING_LOG:
        return log_decide(lim, st, now_ms, cost, out);
    case RK_ALG_CONCURRENCY:
        return leases_decide(lim, st, now_ms, cost, lease_id, out);
    default:
        rk_cell_decide(lim, &st->cell, now_ms, cost, out);
        return RK_OK;
    }
}

int64_t rk_state_ttl_ms(const rk_limit_t *lim, const rk_entry_state_t *st, int64_t now_ms) {
    switch (lim->algorithm) {
    case RK_ALG_SLIDING_LOG: {
        if (!is_packed(st))
            return rk_log_ttl_ms(lim, st->log, now_ms);
        rk_log_t log;
        int64_t buf[PACKED_LOG_MAX];
        log_unpack(st, &log, buf);
        return rk_log_ttl_ms(lim, &log, now_ms);
    }
    case RK_ALG_CONCURRENCY: {
        if (!is_packed(st))
            return rk_lease_ttl_ms(st->leases, now_ms);
        rk_lease_set_t set;
        rk_lease_t lease;
        leases_unpack(st, &set, &lease);
        return rk_lease_ttl_ms(&set, now_ms);
    }
    default:
        return rk_cell_ttl_ms(lim, &st->cell, now_ms);
    }
}

void rk_state_refund(const rk_limit_t *lim, rk_entry_state_t *st, int64_t at_ms, int64_t cost,
                     const char *lease_id) {
    switch (lim->algorithm) {
    case RK_ALG_SLIDING_LOG: {
        if (!is_packed(st)) {
            rk_log_refund(st->log, at_ms, cost);
            return;
        }
        rk_log_t log;
        int64_t buf[PACKED_LOG_MAX];
        log_unpack(st, &log, buf);
        rk_log_refund(&log, at_ms, cost);
        (void)log_store(st, &log); /* fewer entries than it had: it packs again */
        return;
    }
    case RK_ALG_CONCURRENCY: {
        int64_t ttl = 0;
        (void)rk_state_release(st, at_ms, lease_id, cost, &ttl);
        return;
    }
    default:
        rk_cell_refund(lim, &st->cell, at_ms, cost);
        return;
    }
}

bool rk_state_release(rk_entry_state_t *st, int64_t now_ms, const char *lease_id, int64_t units,
                      int64_t *ttl_ms) {
    if (!is_packed(st)) {
        bool was_live = rk_lease_release(st->leases, now_ms, lease_id, units);
        *ttl_ms = rk_lease_ttl_ms(st->leases, now_ms);
        return was_live;
    }
    rk_lease_set_t set;
    rk_lease_t lease;
    leases_unpack(st, &set, &lease);
    bool was_live = rk_lease_release(&set, now_ms, lease_id, units);
    *ttl_ms = rk_lease_ttl_ms(&set, now_ms);
    (void)leases_store(st, &set); /* fewer leases than it had: it packs again */
    return was_live;
}
