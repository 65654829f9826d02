/*
 * concurrency.c — leases: at most `limit` units held at once.
 *
 * State (rk_lease_set_t): the leases, sorted by expiry. A lease acquired at
 * now with cost units expires at now + window_ms and is live while
 * now < expiry. Lua: a sorted set, score = expiry (ms), member
 * "<lease_id>:<units>".
 *
 * now is clamped to >= (latest expiry - window), the time of the latest
 * acquisition. The limit is bounded by RK_CONCURRENCY_LIMIT_MAX. Acquiring
 * with the id of a live lease renews it: its units do not count against the
 * new acquisition and it is replaced when that is allowed. Expired leases are
 * dropped only when a lease is acquired (a denied request or a peek writes
 * nothing).
 *
 * - allowed iff (live units but the renewed lease's) + cost <= limit;
 * - remaining = limit - live units (after the request), at least 0;
 * - reset_ms = until the last live lease expires, 0 when none is live;
 * - retry_after_ms = until enough leases have expired for the request to
 *   pass, if none is released before; cost > limit never passes.
 * - ttl = reset_ms.
 *
 * Release (no window at hand, so now is not clamped) removes the lease,
 * live or not, and tells whether it was live; when no live lease is left
 * the set is emptied, as the Lua script then deletes its key.
 */
#include "limiter_internal.h"

#include <stdlib.h>
#include <string.h>

/* A lease expires at most a window after the latest (bounded) now. */
#define LEASE_EXPIRY_MAX (RK_NOW_MS_MAX + RK_WINDOW_MS_MAX)

typedef struct {
    int64_t now;       /* clamped */
    int64_t limit;     /* bounded */
    int64_t window_ms; /* bounded */
    uint32_t first_live;
    int64_t live_units;
    int64_t renewed_units; /* units of the live lease with the request's id */
    int64_t renewed_index; /* its index, -1 if none */
} lease_view_t;

/* Reads the set as of now_ms (never writes it). O(leases). */
static lease_view_t lease_view(const rk_limit_t *lim, const rk_lease_set_t *set, int64_t now_ms,
                               const char *lease_id) {
    lease_view_t v;
    v.limit = rk_clamp(lim->limit, 1, RK_CONCURRENCY_LIMIT_MAX);
    v.window_ms = rk_clamp(lim->window_ms, 1, RK_WINDOW_MS_MAX);
    v.now = rk_bound_now(now_ms);
    if (set->len > 0)
        v.now =
            rk_max64(v.now, rk_clamp(set->leases[set->len - 1].expires_ms, 0, LEASE_EXPIRY_MAX) -
                                v.window_ms);
    v.first_live = 0;
    while (v.first_live < set->len && set->leases[v.first_live].expires_ms <= v.now)
        v.first_live++;
    v.live_units = 0;
    v.renewed_units = 0;
    v.renewed_index = -1;
    for (uint32_t i = v.first_live; i < set->len; i++) {
        v.live_units += set->leases[i].units;
        if (lease_id && *lease_id && strcmp(set->leases[i].id, lease_id) == 0) {
            v.renewed_units = set->leases[i].units;
            v.renewed_index = i;
        }
    }
    return v;
}

static int64_t last_live_expiry_ms(const rk_lease_set_t *set, const lease_view_t *v) {
    return set->len > v->first_live ? set->leases[set->len - 1].expires_ms : v->now;
}

/* Time until enough leases (other than the renewed one) expire for `cost`. */
static int64_t lease_retry_ms(const rk_lease_set_t *set, const lease_view_t *v, int64_t cost) {
    int64_t to_free = v->live_units - v->renewed_units + cost - v->limit;
    for (uint32_t i = v->first_live; i < set->len; i++) {
        if ((int64_t)i == v->renewed_index)
            continue;
        to_free -= set->leases[i].units;
        if (to_free <= 0)
            return set->leases[i].expires_ms - v->now;
    }
    return last_live_expiry_ms(set, v) - v->now; /* not reached: others hold enough */
}

/* Removes leases [from, from + n). */
static void lease_remove(rk_lease_set_t *set, uint32_t from, uint32_t n) {
    if (n == 0)
        return;
    memmove(set->leases + from, set->leases + from + n,
            (size_t)(set->len - from - n) * sizeof *set->leases);
    set->len -= n;
}

/* Inserts a lease keeping the set sorted by expiry; RK_ERR on OOM. */
static rk_status_t lease_insert(rk_lease_set_t *set, const rk_lease_t *lease) {
    if (set->len == set->cap) {
        uint32_t cap = set->cap ? set->cap * 2 : 8;
        rk_lease_t *leases = realloc(set->leases, (size_t)cap * sizeof *leases);
        if (!leases)
            return RK_ERR;
        set->leases = leases;
        set->cap = cap;
    }
    uint32_t at = set->len;
    while (at > 0 && set->leases[at - 1].expires_ms > lease->expires_ms)
        at--;
    memmove(set->leases + at + 1, set->leases + at, (size_t)(set->len - at) * sizeof *set->leases);
    set->leases[at] = *lease;
    set->len++;
    return RK_OK;
}

rk_status_t rk_lease_acquire(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms,
                             int64_t cost, const char *lease_id, rk_decision_t *out) {
    cost = rk_bound_cost(cost);
    if (cost > 0 && (!lease_id || !*lease_id || strlen(lease_id) > RK_LEASE_ID_LEN))
        return RK_ERR;
    lease_view_t v = lease_view(lim, set, now_ms, lease_id);

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    int64_t others = v.live_units - v.renewed_units;
    out->allowed = cost <= v.limit && others <= v.limit - cost;
    int64_t held = v.live_units;
    if (out->allowed && cost > 0) {
        rk_lease_t lease = {.units = cost, .expires_ms = v.now + v.window_ms};
        memcpy(lease.id, lease_id, strlen(lease_id) + 1);
        if (v.renewed_index >= 0)
            lease_remove(set, (uint32_t)v.renewed_index, 1);
        lease_remove(set, 0, v.first_live);
        if (lease_insert(set, &lease) != RK_OK)
            return RK_ERR;
        v.first_live = 0;
        held = others + cost;
    }
    out->remaining = rk_max64(0, v.limit - held);
    out->reset_ms = held > 0 ? last_live_expiry_ms(set, &v) - v.now : 0;
    if (!out->allowed)
        out->retry_after_ms = cost > v.limit ? rk_retry_never(out->reset_ms, v.window_ms)
                                             : lease_retry_ms(set, &v, cost);
    return RK_OK;
}

void rk_lease_peek(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms, rk_decision_t *out) {
    (void)rk_lease_acquire(lim, set, now_ms, 0, NULL, out); /* cost 0 cannot fail */
}

bool rk_lease_release(rk_lease_set_t *set, int64_t now_ms, const char *lease_id) {
    int64_t now = rk_bound_now(now_ms);
    bool was_live = false;
    for (uint32_t i = 0; lease_id && *lease_id && i < set->len; i++) {
        if (strcmp(set->leases[i].id, lease_id) == 0) {
            was_live = set->leases[i].expires_ms > now;
            lease_remove(set, i, 1);
            break;
        }
    }
    if (set->len > 0 && set->leases[set->len - 1].expires_ms <= now)
        set->len = 0;
    return was_live;
}

int64_t rk_lease_ttl_ms(const rk_lease_set_t *set, int64_t now_ms) {
    int64_t now = rk_bound_now(now_ms);
    if (set->len == 0)
        return 0;
    return rk_max64(0, set->leases[set->len - 1].expires_ms - now);
}

void rk_lease_set_free(rk_lease_set_t *set) {
    free(set->leases);
    memset(set, 0, sizeof *set);
}
