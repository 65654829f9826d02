/*
 * sliding_log.c — the exact sliding window: one timestamp per admitted unit.
 *
 * State (rk_log_t): a ring buffer of timestamps (ms), oldest first, and
 * copies of its first and last ones, so that a check that drops nothing
 * reads no entry of a log spread over many pages before it appends. An
 * entry admitted at t is live while now < t + window. Lua: a list of the
 * timestamps, oldest first, read and trimmed the same way.
 *
 * now is clamped to >= the newest entry. The limit is bounded by
 * RK_SLIDING_LOG_LIMIT_MAX (the log holds at most `limit` entries).
 * Expired entries are dropped only when a request is admitted (a denied
 * request or a peek writes nothing).
 *
 * - allowed iff live + cost <= limit;
 * - remaining = limit - live (after the request);
 * - reset_ms = until the newest live entry expires, 0 when none is live;
 * - retry_after_ms: with k = live + cost - limit, the time until the k-th
 *   oldest live entry expires; cost > limit never passes.
 * - ttl = reset_ms.
 * - refund (rk_log_refund): the entries the request added.
 */
#include "limiter_internal.h"

#include <stdlib.h>
#include <string.h>

/* cap is a power of two (4, doubled as needed), so a mask wraps the ring. */
static int64_t log_at(const rk_log_t *log, uint32_t i) {
    return log->ts[(log->head + i) & (log->cap - 1)];
}

/*
 * The index (from head) of the first entry later than `cut`, log->len when
 * none is. It gallops from the oldest entry, so finding k expired entries
 * costs O(log k) reads near the head, and none expired costs none: a binary
 * search over the whole log would read O(log n) cache lines spread over it.
 */
static uint32_t log_first_after(const rk_log_t *log, int64_t cut) {
    if (log->len == 0 || log->oldest_ms > cut)
        return 0;
    uint32_t lo = 0, bound = 1; /* log_at(lo) <= cut */
    while (bound < log->len && log_at(log, bound) <= cut) {
        lo = bound;
        bound = bound <= log->len / 2 ? bound * 2 : log->len;
    }
    uint32_t hi = bound < log->len ? bound : log->len;
    for (lo++; lo < hi;) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log_at(log, mid) <= cut)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    int64_t now;         /* clamped */
    uint32_t first_live; /* index (from head) of the oldest live entry */
    int64_t live;        /* live entries */
    int64_t limit;       /* bounded */
    int64_t window_ms;   /* bounded */
} log_view_t;

/* Reads the log as of now_ms (never writes it). */
static log_view_t log_view(const rk_limit_t *lim, const rk_log_t *log, int64_t now_ms) {
    log_view_t v;
    v.limit = rk_clamp(lim->limit, 1, RK_SLIDING_LOG_LIMIT_MAX);
    v.window_ms = rk_clamp(lim->window_ms, 1, RK_WINDOW_MS_MAX);
    v.now = rk_bound_now(now_ms);
    if (log->len > 0)
        v.now = rk_max64(v.now, log->newest_ms);
    v.first_live = log_first_after(log, v.now - v.window_ms);
    v.live = (int64_t)(log->len - v.first_live);
    return v;
}

/* Makes room for `more` entries after dropping the expired ones; RK_ERR on OOM. */
static rk_status_t log_reserve(rk_log_t *log, uint32_t drop, uint32_t more) {
    log->head = log->cap ? (log->head + drop) & (log->cap - 1) : 0;
    log->len -= drop;
    if (drop > 0 && log->len > 0)
        log->oldest_ms = log_at(log, 0);
    uint32_t need = log->len + more;
    if (need <= log->cap)
        return RK_OK;
    uint32_t cap = log->cap ? log->cap : 4;
    while (cap < need)
        cap *= 2;
    int64_t *ts = malloc((size_t)cap * sizeof *ts);
    if (!ts)
        return RK_ERR;
    for (uint32_t i = 0; i < log->len; i++)
        ts[i] = log_at(log, i);
    if (!log->borrowed)
        free(log->ts);
    log->borrowed = false;
    log->ts = ts;
    log->cap = cap;
    log->head = 0;
    return RK_OK;
}

rk_status_t rk_log_decide(const rk_limit_t *lim, rk_log_t *log, int64_t now_ms, int64_t cost,
                          rk_decision_t *out) {
    log_view_t v = log_view(lim, log, now_ms);
    cost = rk_bound_cost(cost);

    memset(out, 0, sizeof *out);
    out->limit = lim->limit;
    out->at_ms = v.now;
    out->allowed = cost <= v.limit - v.live;
    if (out->allowed && cost > 0) {
        if (log_reserve(log, v.first_live, (uint32_t)cost) != RK_OK)
            return RK_ERR;
        if (log->len == 0)
            log->oldest_ms = v.now;
        for (int64_t i = 0; i < cost; i++)
            log->ts[(log->head + log->len++) & (log->cap - 1)] = v.now;
        log->newest_ms = v.now;
        v.first_live = 0;
        v.live = log->len;
    }
    out->remaining = rk_max64(0, v.limit - v.live);
    out->reset_ms = v.live > 0 ? log->newest_ms + v.window_ms - v.now : 0;
    if (!out->allowed) {
        if (cost > v.limit) {
            out->retry_after_ms = rk_retry_never(out->reset_ms, v.window_ms);
        } else {
            int64_t k = v.live + cost - v.limit; /* 1..live */
            int64_t kth = log_at(log, v.first_live + (uint32_t)(k - 1));
            out->retry_after_ms = kth + v.window_ms - v.now;
        }
    }
    return RK_OK;
}

/*
 * Removes up to cost entries stamped at_ms (those a request allowed at that
 * clamped now added), the latest of them, as LREM key -cost at does; the
 * entries after them (later requests') move down. Reads only the entries
 * from the newest back to them.
 */
void rk_log_refund(rk_log_t *log, int64_t at_ms, int64_t cost) {
    int64_t at = rk_bound_now(at_ms);
    if (log->len == 0 || log->newest_ms < at || log->oldest_ms > at || cost <= 0)
        return;
    uint32_t end = log->len;
    while (end > 0 && log_at(log, end - 1) > at)
        end--;
    uint32_t start = end;
    while (start > 0 && (int64_t)(end - start) < cost && log_at(log, start - 1) == at)
        start--;
    uint32_t k = end - start;
    if (k == 0)
        return;
    for (uint32_t i = end; i < log->len; i++)
        log->ts[(log->head + i - k) & (log->cap - 1)] = log_at(log, i);
    log->len -= k;
    if (log->len > 0) {
        log->oldest_ms = log_at(log, 0);
        log->newest_ms = log_at(log, log->len - 1);
    }
}

int64_t rk_log_ttl_ms(const rk_limit_t *lim, const rk_log_t *log, int64_t now_ms) {
    log_view_t v = log_view(lim, log, now_ms);
    return v.live > 0 ? log->newest_ms + v.window_ms - v.now : 0;
}

void rk_log_free(rk_log_t *log) {
    if (!log->borrowed)
        free(log->ts);
    memset(log, 0, sizeof *log);
}
