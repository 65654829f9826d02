/*
 * concurrency.c — leases: at most `limit` units held at once.
 *
 * State (rk_lease_set_t): the leases, sorted by expiry, and the sum of
 * their units. A lease acquired at now with cost units expires at now +
 * window_ms and is live while now < expiry. Lua: a sorted set, score =
 * expiry (ms), member "<lease_id>:<units>", and the sum as the negated score
 * of the member "#".
 *
 * now is taken as it is: each lease keeps the expiry it was given, so a
 * window shortened while leases are held ends the new ones sooner and the
 * old ones when they were told (a clock running backwards likewise finds
 * the leases live that are). A new lease is inserted in its place by
 * expiry, which is the end of the set unless the window was shortened or
 * the clock went back (then a binary search and a move of the leases after
 * it). The limit is bounded by RK_CONCURRENCY_LIMIT_MAX. Expired leases are dropped
 * only when a lease is acquired (a denied request or a peek writes nothing).
 * The set keeps the expiries of its first and last leases, so an acquire
 * that drops nothing reads no lease, and one that drops k reads O(log k)
 * leases near the head; it never walks the live ones.
 *
 * - allowed iff live units + cost <= limit;
 * - remaining = limit - live units (after the request), at least 0;
 * - reset_ms = until the last live lease expires, 0 when none is live;
 * - retry_after_ms = until enough leases have expired for the request to
 *   pass, if none is released before; cost > limit never passes.
 * - ttl = reset_ms.
 *
 * A lease keeps its id in 16 bytes (rk_lease_t): every id ratekitd draws
 * (32 lowercase hex digits), or a shorter one of up to 16 characters. Any
 * other id is refused here, where the Lua script would take it; ratekitd
 * never makes one.
 *
 * Release (no window at hand, so now is not clamped) removes the lease,
 * live or not, of the units named when they are (as the script reads the
 * member "<lease_id>:<units>"), and tells whether it was live; when no
 * live lease is left the set is emptied, as the Lua script then deletes
 * its key.
 */
#include "limiter_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t now;       /* bounded */
    int64_t limit;     /* bounded */
    int64_t window_ms; /* bounded */
    uint32_t first_live;
    int64_t live_units;
} lease_view_t;

/*
 * The first lease of the set live at now (set->len when none is). It
 * gallops from the oldest lease, so k expired leases cost O(log k) reads
 * near the head, where a binary search over the set would read O(log n)
 * cache lines spread over it (the array of a busy key spans many pages).
 */
static uint32_t first_live_at(const rk_lease_set_t *set, int64_t now) {
    const rk_lease_t *l = set->leases;
    if (set->head == set->len || set->first_expiry_ms > now)
        return set->head;
    uint32_t lo = set->head, step = 1; /* l[lo] has expired */
    while (step < set->len - lo && l[lo + step].expires_ms <= now) {
        lo += step;
        step = step <= (set->len - lo) / 2 ? step * 2 : set->len - lo;
    }
    uint32_t hi = step < set->len - lo ? lo + step : set->len;
    for (lo++; lo < hi;) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l[mid].expires_ms <= now)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Reads the set as of now_ms (never writes it). */
static lease_view_t lease_view(const rk_limit_t *lim, const rk_lease_set_t *set, int64_t now_ms) {
    lease_view_t v;
    v.limit = rk_clamp(lim->limit, 1, RK_CONCURRENCY_LIMIT_MAX);
    v.window_ms = rk_clamp(lim->window_ms, 1, RK_WINDOW_MS_MAX);
    v.now = rk_bound_now(now_ms);
    v.first_live = first_live_at(set, v.now);
    v.live_units = set->units;
    for (uint32_t i = set->head; i < v.first_live; i++)
        v.live_units -= set->leases[i].units;
    return v;
}

/* Time until enough leases expire for `cost`. */
static int64_t lease_retry_ms(const rk_lease_set_t *set, const lease_view_t *v, int64_t cost) {
    int64_t to_free = v->live_units + cost - v->limit;
    for (uint32_t i = v->first_live; i < set->len; i++) {
        to_free -= set->leases[i].units;
        if (to_free <= 0)
            return set->leases[i].expires_ms - v->now;
    }
    return set->last_expiry_ms - v->now; /* not reached: the live leases hold enough */
}

/* Drops the leases before `first` (expired). */
static void lease_drop_before(rk_lease_set_t *set, uint32_t first) {
    if (first == set->head)
        return;
    for (uint32_t i = set->head; i < first; i++)
        set->units -= set->leases[i].units;
    set->head = first;
    if (set->head == set->len)
        set->head = set->len = 0;
    else
        set->first_expiry_ms = set->leases[first].expires_ms;
}

/* Where a lease expiring at expires_ms goes: after every lease expiring no later. */
static uint32_t lease_place(const rk_lease_set_t *set, int64_t expires_ms) {
    uint32_t lo = set->head, hi = set->len;
    if (lo == hi || set->last_expiry_ms <= expires_ms)
        return hi; /* the usual case: it expires last */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (set->leases[mid].expires_ms <= expires_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Inserts a lease in its place by expiry (mostly the end). A full array is
 * compacted when at least half of it is dropped leases, and doubled
 * otherwise, so that an append is O(1) amortized. RK_ERR on OOM.
 */
static rk_status_t lease_insert(rk_lease_set_t *set, const rk_lease_t *lease) {
    if (set->len == set->cap && set->head >= set->cap / 2 && set->head > 0) {
        memmove(set->leases, set->leases + set->head,
                (size_t)(set->len - set->head) * sizeof *set->leases);
        set->len -= set->head;
        set->head = 0;
    }
    if (set->len == set->cap) {
        uint32_t cap = set->cap ? set->cap * 2 : 2;
        rk_lease_t *leases = set->borrowed ? malloc((size_t)cap * sizeof *leases)
                                           : realloc(set->leases, (size_t)cap * sizeof *leases);
        if (!leases)
            return RK_ERR;
        if (set->borrowed)
            memcpy(leases, set->leases, (size_t)set->len * sizeof *leases);
        set->borrowed = false;
        set->leases = leases;
        set->cap = cap;
    }
    uint32_t at = lease_place(set, lease->expires_ms);
    memmove(set->leases + at + 1, set->leases + at, (size_t)(set->len - at) * sizeof *set->leases);
    set->leases[at] = *lease;
    set->len++;
    set->units += lease->units;
    set->first_expiry_ms = set->leases[set->head].expires_ms;
    set->last_expiry_ms = set->leases[set->len - 1].expires_ms;
    return RK_OK;
}

rk_status_t rk_lease_acquire(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms,
                             int64_t cost, const char *lease_id, rk_decision_t *out) {
    cost = rk_bound_cost(cost);
    rk_lease_t lease = {0};
    if (cost > 0 && (!lease_id || !rk_lease_id_set(&lease, lease_id)))
        return RK_ERR;
    lease_view_t v = lease_view(lim, set, now_ms);

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    out->allowed = cost <= v.limit && v.live_units <= v.limit - cost;
    int64_t held = v.live_units;
    if (out->allowed && cost > 0) {
        lease.units = (int32_t)cost;
        lease.expires_ms = v.now + v.window_ms;
        lease_drop_before(set, v.first_live);
        if (lease_insert(set, &lease) != RK_OK)
            return RK_ERR;
        v.first_live = set->head;
        held = v.live_units + cost;
    }
    out->remaining = rk_max64(0, v.limit - held);
    out->reset_ms = held > 0 ? set->last_expiry_ms - v.now : 0;
    if (!out->allowed)
        out->retry_after_ms = cost > v.limit ? rk_retry_never(out->reset_ms, v.window_ms)
                                             : lease_retry_ms(set, &v, cost);
    return RK_OK;
}

void rk_lease_peek(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms, rk_decision_t *out) {
    (void)rk_lease_acquire(lim, set, now_ms, 0, NULL, out); /* cost 0 cannot fail */
}

bool rk_lease_id_set(rk_lease_t *l, const char *lease_id) {
    size_t len = strnlen(lease_id, RK_LEASE_ID_LEN + 1);
    memset(l->id, 0, sizeof l->id);
    if (len == RK_LEASE_ID_LEN) {
        l->id_form = RK_LEASE_ID_HEX;
        return rk_unhex(lease_id, l->id, RK_LEASE_ID_BYTES) == RK_OK;
    }
    if (len == 0 || len > RK_LEASE_ID_BYTES)
        return false;
    l->id_form = (uint8_t)len;
    memcpy(l->id, lease_id, len);
    return true;
}

/* Whether l carries the id of want (set by rk_lease_id_set). */
static bool lease_is(const rk_lease_t *l, const rk_lease_t *want) {
    return l->id_form == want->id_form && memcmp(l->id, want->id, sizeof l->id) == 0;
}

bool rk_lease_release(rk_lease_set_t *set, int64_t now_ms, const char *lease_id, int64_t units) {
    int64_t now = rk_bound_now(now_ms);
    bool was_live = false;
    rk_lease_t want;
    bool valid = lease_id && rk_lease_id_set(&want, lease_id);
    for (uint32_t i = set->head; valid && i < set->len; i++) {
        if (lease_is(&set->leases[i], &want) && (units <= 0 || set->leases[i].units == units)) {
            was_live = set->leases[i].expires_ms > now;
            set->units -= set->leases[i].units;
            memmove(set->leases + i, set->leases + i + 1,
                    (size_t)(set->len - i - 1) * sizeof *set->leases);
            set->len--;
            if (set->len > set->head) {
                set->first_expiry_ms = set->leases[set->head].expires_ms;
                set->last_expiry_ms = set->leases[set->len - 1].expires_ms;
            }
            break;
        }
    }
    if (set->len == set->head || set->last_expiry_ms <= now) {
        set->head = set->len = 0;
        set->units = 0;
    }
    return was_live;
}

int64_t rk_lease_ttl_ms(const rk_lease_set_t *set, int64_t now_ms) {
    int64_t now = rk_bound_now(now_ms);
    if (set->len == set->head)
        return 0;
    return rk_max64(0, set->last_expiry_ms - now);
}

void rk_lease_set_free(rk_lease_set_t *set) {
    if (!set->borrowed)
        free(set->leases);
    memset(set, 0, sizeof *set);
}
