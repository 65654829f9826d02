/*
 * check.c — see check.h.
 */
#include "check.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log.h"
#include "../runtime.h"
#include "../stats/stats.h"
#include "deny_cache.h"

/* The decision of a rule that is switched off: allowed, nothing counted. */
static void decide_off(rk_check_item_t *it) {
    memset(&it->decision, 0, sizeof it->decision);
    it->decision.allowed = true;
    it->decision.limit = it->limit.limit;
    it->decision.remaining = it->limit.limit;
}

/*
 * Random bytes for a lease id (unguessable: only its holder may release
 * it), from a per-thread buffer of getrandom() output: one system call per
 * 256 leases rather than one per check. Bytes handed out are wiped.
 */
static rk_status_t lease_random(unsigned char *out, size_t n) {
    static _Thread_local unsigned char pool[4096];
    static _Thread_local size_t left;
    if (left < n) {
        if (rk_random_bytes(pool, sizeof pool) != RK_OK)
            return RK_ERR;
        left = sizeof pool;
    }
    unsigned char *p = pool + sizeof pool - left;
    memcpy(out, p, n);
    memset(p, 0, n);
    left -= n;
    return RK_OK;
}

rk_status_t rk_check_item_init(rk_check_item_t *it, const rk_rule_t *rule, const char *key,
                               size_t key_len, int64_t cost) {
    it->rule = rule;
    it->limit = rule->limit;
    it->cost = cost;
    it->failed_over = false;
    rk_store_normalize_key(key, key_len, it->key);
    const rk_override_t *o =
        RK_UNLIKELY(rule->noverrides > 0) ? rk_rule_override(rule, it->key, rk_now_ms()) : NULL;
    it->overridden = o != NULL;
    if (o)
        it->limit = o->limit;
    it->lease_id[0] = '\0';
    it->peek = false;
    it->refundable = false;
    it->opens_check = true;
    if (rule->limit.algorithm == RK_ALG_CONCURRENCY) {
        unsigned char raw[RK_LEASE_ID_LEN / 2];
        if (lease_random(raw, sizeof raw) != RK_OK)
            return RK_ERR;
        rk_hex(raw, sizeof raw, it->lease_id);
    }
    return RK_OK;
}

static void fill_req(rk_store_req_t *req, const rk_check_item_t *it, int64_t now_ms) {
    req->rule_id = it->rule->id;
    req->key = it->key;
    req->limit = it->limit;
    req->cost = RK_UNLIKELY(it->peek) ? 0 : it->cost; /* cost 0: the store only looks */
    req->now_ms = now_ms;
    req->lease_id = it->lease_id[0] ? it->lease_id : NULL;
    req->refund = false;
    req->refundable = it->refundable && !it->peek; /* a look counts nothing to give back */
}

/*
 * Takes the store's decision d of it. A peek asked the store at cost 0,
 * which always passes and answers the units free as remaining: the peek
 * passes only when its cost units are free. Otherwise a unit frees when a
 * holder releases its lease, which no one can foresee, or as the leases
 * expire: the client is told to retry in a second, or when the last lease
 * expires if that comes sooner.
 */
static void take_decision(rk_check_item_t *it, const rk_decision_t *d) {
    it->decision = *d;
    it->counted = d->allowed && it->cost > 0 && !it->peek;
    if (RK_LIKELY(!it->peek) || !d->allowed || d->remaining >= it->cost)
        return;
    it->decision.allowed = false;
    it->decision.retry_after_ms = d->reset_ms > 0 && d->reset_ms < 1000 ? d->reset_ms : 1000;
}

/*
 * Answers one item whose store failed, by its fail mode: open allows,
 * closed denies (retry after a second), local is decided afterwards by the
 * caller in the in-memory store.
 */
static void decide_failed(rk_check_item_t *it, rk_fail_mode_t mode) {
    rk_decision_t *d = &it->decision;
    memset(d, 0, sizeof *d);
    d->limit = it->limit.limit;
    it->failed_over = true;
    it->counted = false; /* until the in-memory store decides it (local) */
    it->fail_mode_used = mode;
    if (mode == RK_FAIL_OPEN) {
        d->allowed = true;
        d->remaining = d->limit;
    } else if (mode == RK_FAIL_CLOSED) {
        d->allowed = false;
        d->retry_after_ms = 1000;
        d->reset_ms = 1000;
    }
}

/*
 * Whether the deny cache may answer or remember this item: on the live clock
 * only (an explicit now_ms is a replay, which the cache knows nothing of),
 * and in front of a remote store only: the embedded store answers a denied
 * key as fast as the cache would, so asking both would only cost a lookup.
 */
static bool cacheable(const rk_check_item_t *it, int64_t now_ms) {
    return now_ms < 0 && rk_rt.store != rk_rt.fallback && !it->lease_id[0] &&
           rk_deny_cache_applies(&it->limit, it->cost);
}

/*
 * Decides what needs no store: rules switched off, and denials the deny
 * cache remembers. When a remembered denial of an enforcing rule denies
 * the request these items are the rules of (refundable: several rules of
 * one request, not a batch's independent checks), the store only looks at
 * the others (cost 0, no lease): nothing is counted, so nothing has to be
 * given back. A client hammering past one rule would otherwise cost the
 * others a count and a refund each.
 */
static void recall(rk_check_item_t *items, size_t n, int64_t now_ms, int64_t sent_mono) {
    bool denied = false; /* by a remembered denial of an enforcing rule */
    for (size_t i = 0; i < n; i++) {
        rk_check_item_t *it = &items[i];
        it->failed_over = false;
        it->counted = false;
        it->settled = true;
        if (it->rule->mode == RK_MODE_OFF)
            decide_off(it);
        else if (cacheable(it, now_ms) &&
                 rk_deny_cache_lookup(it->rule, &it->limit, it->key, sent_mono, &it->decision))
            denied |= it->rule->mode == RK_MODE_ENFORCE && it->refundable;
        else
            it->settled = false;
    }
    for (size_t i = 0; RK_UNLIKELY(denied) && i < n; i++) {
        if (!items[i].settled && items[i].refundable) {
            items[i].peek = true;
            items[i].lease_id[0] = '\0';
        }
    }
}

/* Fills reqs with the items the store must decide; map[j] is the item of reqs[j]. */
static size_t plan_items(const rk_check_item_t *items, size_t n, int64_t now_ms,
                         rk_store_req_t *reqs, size_t *map) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].settled)
            continue;
        fill_req(&reqs[m], &items[i], now_ms);
        map[m++] = i;
    }
    return m;
}

/* Marks out[0..m) undecided, so that a failed store call tells which requests it decided. */
static void mark_undecided(rk_decision_t *out, size_t m) {
    for (size_t j = 0; j < m; j++)
        out[j].limit = RK_STORE_UNDECIDED;
}

/*
 * Takes the store's answer (st) for the m planned requests (out[] marked by
 * mark_undecided before the call): the decision of each request the store
 * decided, even when it failed for others (Redis counted those), and each
 * other rule's fail mode ("local" ones decided together in the in-memory
 * store). reqs and map are reordered.
 */
static void apply_store(rk_check_item_t *items, rk_store_req_t *reqs, const rk_decision_t *out,
                        size_t *map, size_t m, int64_t now_ms, int64_t sent_mono, rk_status_t st) {
    size_t local = 0;
    for (size_t j = 0; j < m; j++) {
        rk_check_item_t *it = &items[map[j]];
        if (RK_LIKELY(st == RK_OK || out[j].limit != RK_STORE_UNDECIDED)) {
            take_decision(it, &out[j]);
            if (!out[j].allowed && cacheable(it, now_ms))
                rk_deny_cache_remember(it->rule, &it->limit, it->key, sent_mono, &out[j]);
            continue;
        }
        rk_fail_mode_t mode = it->rule->fail_mode == RK_FAIL_DEFAULT
                                  ? (rk_fail_mode_t)rk_rt.cfg.fail_mode
                                  : it->rule->fail_mode;
        decide_failed(it, mode);
        if (mode == RK_FAIL_LOCAL) {
            reqs[local] = reqs[j];
            map[local++] = map[j];
        }
    }
    rk_decision_t fallback[RK_CHECK_MAX_ITEMS];
    if (local > 0 && rk_rt.fallback->ops->decide(rk_rt.fallback, reqs, local, fallback) == RK_OK) {
        for (size_t j = 0; j < local; j++)
            take_decision(&items[map[j]], &fallback[j]);
    }
}

static int64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Counts the decisions (stats.c: per-thread counters, no lock). */
static void count(const rk_check_item_t *items, size_t n, int64_t started_ns) {
    rk_stats_count(items, n < RK_CHECK_MAX_ITEMS ? n : RK_CHECK_MAX_ITEMS, mono_ns() - started_ns);
}

void rk_check_run(rk_check_item_t *items, size_t n, int64_t now_ms) {
    int64_t started = mono_ns();
    if (n > RK_CHECK_MAX_ITEMS)
        n = RK_CHECK_MAX_ITEMS;
    rk_store_req_t reqs[RK_CHECK_MAX_ITEMS];
    rk_decision_t out[RK_CHECK_MAX_ITEMS];
    size_t map[RK_CHECK_MAX_ITEMS];
    int64_t sent_mono = started / 1000000; /* rk_mono_ms(), without a second clock read */
    recall(items, n, now_ms, sent_mono);
    size_t m = plan_items(items, n, now_ms, reqs, map);
    if (m > 0) {
        mark_undecided(out, m);
        rk_status_t st = rk_rt.store->ops->decide(rk_rt.store, reqs, m, out);
        apply_store(items, reqs, out, map, m, now_ms, sent_mono, st);
    }
    count(items, n, started);
}

/* ---- asynchronous checks ---- */

bool rk_check_async_available(void) {
    return rk_rt.store->ops->decide_async != NULL;
}

int64_t rk_check_recall(rk_check_item_t *items, size_t n) {
    int64_t started = mono_ns();
    recall(items, n, -1, started / 1000000);
    return started;
}

bool rk_check_prepare(rk_check_job_t *job, rk_check_item_t *items, size_t n, int64_t started_ns) {
    job->started_ns = started_ns;
    job->items = items;
    job->n = n < RK_CHECK_ASYNC_MAX ? n : RK_CHECK_ASYNC_MAX;
    job->sent_mono_ms = job->started_ns / 1000000;
    job->m = plan_items(items, job->n, -1, job->reqs, job->map);
    if (job->m > 0) {
        mark_undecided(job->out, job->m);
        return false;
    }
    count(items, job->n, job->started_ns);
    return true;
}

/* The store's answer to a submitted job: finishes it and tells its owner. */
static void job_answered(void *ctx, rk_status_t st) {
    rk_check_job_t *job = ctx;
    apply_store(job->items, job->reqs, job->out, job->map, job->m, -1, job->sent_mono_ms, st);
    count(job->items, job->n, job->started_ns);
    job->done(job->ctx); /* the job may be gone after this */
}

void rk_check_submit(rk_check_job_t *job, void (*done)(void *ctx), void *ctx) {
    job->done = done;
    job->ctx = ctx;
    if (rk_rt.store->ops->decide_async(rk_rt.store, job->reqs, job->m, job->out, job_answered,
                                       job) != RK_OK)
        job_answered(job, RK_ERR);
}

/* ---- refunds ---- */

static atomic_uint_fast64_t refunds, refunds_failed;
static _Atomic int64_t refund_failure_logged_ms = -1;

#define REFUND_LOG_MS 10000 /* at most one line about failed refunds this often */

uint64_t rk_check_refunds(void) {
    return atomic_load_explicit(&refunds, memory_order_relaxed);
}

uint64_t rk_check_refunds_failed(void) {
    return atomic_load_explicit(&refunds_failed, memory_order_relaxed);
}

/* n refunds the store failed: counted, and logged at most every REFUND_LOG_MS. */
static void refund_failed(size_t n) {
    uint64_t total = atomic_fetch_add_explicit(&refunds_failed, n, memory_order_relaxed) + n;
    int64_t now = rk_mono_ms();
    int64_t last = atomic_load_explicit(&refund_failure_logged_ms, memory_order_relaxed);
    if ((last >= 0 && now - last < REFUND_LOG_MS) ||
        !atomic_compare_exchange_strong(&refund_failure_logged_ms, &last, now))
        return;
    rk_warn("The store failed to take back what rules that allowed a denied request had "
            "counted (%llu refunds failed so far, ratekit_check_refunds_failed_total): those "
            "keys keep the cost until their windows pass",
            (unsigned long long)total);
}

/*
 * The refund of an item that a store counted: its decision's time (or the
 * store's clock, where none came and the algorithm needs none), its cost,
 * its lease. false when it cannot be given back exactly.
 */
static bool fill_refund(rk_store_req_t *req, const rk_check_item_t *it) {
    if (it->decision.at_ms < 0 && rk_store_refund_needs_time(it->limit.algorithm))
        return false;
    req->rule_id = it->rule->id;
    req->key = it->key;
    req->limit = it->limit;
    req->cost = it->cost;
    req->now_ms = it->decision.at_ms >= 0 ? it->decision.at_ms : -1;
    req->lease_id = it->lease_id[0] ? it->lease_id : NULL;
    req->refund = true;
    req->refundable = false;
    return true;
}

/*
 * Refunds for a store that answers later: everything they point at is
 * copied here (the request and its rules may be gone by then), in one
 * block, freed when the store is done with them.
 */
typedef struct {
    size_t n;
    rk_store_req_t *reqs;
    rk_decision_t *out;
    struct refund_names {
        char rule_id[RK_RULE_ID_MAX + 1];
        char key[RK_STORE_KEY_MAX + 1];
        char lease_id[RK_LEASE_ID_LEN + 1];
    } * names;
} refund_block_t;

static void refund_done(void *ctx, rk_status_t st) {
    refund_block_t *b = ctx;
    if (st != RK_OK)
        refund_failed(b->n);
    free(b);
}

/* Sends reqs[0..n) (pointing into items) to an asynchronous store, its answer not awaited. */
static void refund_async(rk_store_t *store, const rk_store_req_t *reqs, size_t n) {
    size_t size = sizeof(refund_block_t) +
                  n * (sizeof *reqs + sizeof(rk_decision_t) + sizeof(struct refund_names));
    refund_block_t *b = malloc(size);
    if (!b) {
        refund_failed(n);
        return;
    }
    b->n = n;
    b->reqs = (rk_store_req_t *)(void *)(b + 1);
    b->out = (rk_decision_t *)(void *)(b->reqs + n);
    b->names = (struct refund_names *)(void *)(b->out + n);
    for (size_t i = 0; i < n; i++) {
        struct refund_names *nm = &b->names[i];
        snprintf(nm->rule_id, sizeof nm->rule_id, "%s", reqs[i].rule_id);
        snprintf(nm->key, sizeof nm->key, "%s", reqs[i].key);
        snprintf(nm->lease_id, sizeof nm->lease_id, "%s", reqs[i].lease_id ? reqs[i].lease_id : "");
        b->reqs[i] = reqs[i];
        b->reqs[i].rule_id = nm->rule_id;
        b->reqs[i].key = nm->key;
        b->reqs[i].lease_id = reqs[i].lease_id ? nm->lease_id : NULL;
    }
    if (store->ops->decide_async(store, b->reqs, n, b->out, refund_done, b) != RK_OK)
        refund_done(b, RK_ERR);
}

/* Sends reqs[0..n) to store: at once when it only decides in place, else without waiting. */
static void refund_on(rk_store_t *store, const rk_store_req_t *reqs, size_t n) {
    if (n == 0)
        return;
    atomic_fetch_add_explicit(&refunds, n, memory_order_relaxed);
    if (store->ops->decide_async) {
        refund_async(store, reqs, n);
        return;
    }
    rk_decision_t out[RK_CHECK_MAX_ITEMS];
    if (store->ops->decide(store, reqs, n, out) != RK_OK)
        refund_failed(n);
}

/* The answer of an item given back: what remained before it took its cost. */
static void note_refunded(rk_check_item_t *it) {
    it->decision.remaining += it->cost;
}

void rk_check_refund(rk_check_item_t *items, size_t n) {
    if (n < 2 || rk_check_allowed(items, n))
        return;
    if (n > RK_CHECK_MAX_ITEMS)
        n = RK_CHECK_MAX_ITEMS;
    /* The store's refunds from the front of reqs, the in-memory fallback's from the back. */
    rk_store_req_t reqs[RK_CHECK_MAX_ITEMS];
    size_t remote = 0, local = n;
    for (size_t i = 0; i < n; i++) {
        rk_check_item_t *it = &items[i];
        if (!it->counted)
            continue;
        bool given_back =
            it->failed_over ? fill_refund(&reqs[local - 1], it) : fill_refund(&reqs[remote], it);
        if (!given_back)
            continue;
        if (it->failed_over)
            local--;
        else
            remote++;
        note_refunded(it);
    }
    refund_on(rk_rt.store, reqs, remote);
    refund_on(rk_rt.fallback, reqs + local, n - local);
}

bool rk_check_allowed(const rk_check_item_t *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!items[i].decision.allowed && items[i].rule->mode == RK_MODE_ENFORCE)
            return false;
    return true;
}

/* a->remaining / a->limit < b->remaining / b->limit, without division. */
static bool less_share(const rk_decision_t *a, const rk_decision_t *b) {
    __int128 lhs = (__int128)a->remaining * (b->limit > 0 ? b->limit : 1);
    __int128 rhs = (__int128)b->remaining * (a->limit > 0 ? a->limit : 1);
    return lhs < rhs;
}

/* How an item ranks for the headline: an enforcing denial, then an enforcing rule, then the rest.
 */
static int headline_tier(const rk_check_item_t *it) {
    if (it->rule->mode != RK_MODE_ENFORCE)
        return 0; /* a shadow rule must not make a client back off */
    return it->decision.allowed ? 1 : 2;
}

int rk_check_headline(const rk_check_item_t *items, size_t n) {
    int best = -1, best_tier = -1;
    for (size_t i = 0; i < n; i++) {
        int tier = headline_tier(&items[i]);
        if (tier < best_tier)
            continue;
        const rk_decision_t *d = &items[i].decision;
        const rk_decision_t *b = best < 0 ? NULL : &items[best].decision;
        if (tier > best_tier ||
            (tier == 2 ? d->retry_after_ms > b->retry_after_ms : less_share(d, b))) {
            best = (int)i;
            best_tier = tier;
        }
    }
    return best;
}
