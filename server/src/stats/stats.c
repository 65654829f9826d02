/*
 * stats.c — see stats.h.
 *
 * The check path writes only its own thread's block of counters (a
 * relaxed load and store each: no lock prefix, no sharing). The blocks
 * are cumulative and never reset; the background thread sums them once a
 * second and takes the difference with the previous sum. Rule ids map to
 * slots through a lock-free table filled on first sight.
 *
 * Views: on the embedded store, the ring of this process's own counts;
 * on Redis, a mirror of the cluster-wide sums read back from Redis each
 * second (and in full at start), so that a read never waits on Redis
 * except for the top keys.
 */
#include "stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../audit/audit.h"
#include "../http/jsonw.h"
#include "../log.h"
#include "../runtime.h"
#include "cluster.h"
#include "stream.h"
#include "topk.h"

const char *const rk_stat_field_names[RK_STAT_FIELDS] = {"allowed", "denied", "shadow_denied",
                                                         "errors"};
const int64_t rk_stats_hist_bounds_ns[RK_STATS_HIST_BUCKETS] = {
    10000,   25000,   50000,    100000,   250000,    500000,    1000000,
    2500000, 5000000, 10000000, 25000000, 100000000, 1000000000};

#define TOP_MINUTES 16
#define TOP_KEYS_PER_MINUTE 4096  /* embedded store: distinct keys kept per minute */
#define TOP_KEYS_PER_SECOND 10000 /* Redis: distinct keys published per second */
#define HEARTBEAT_S 15
#define PUBLISH_AT_MS 50    /* into each second: fold the one that ended */
#define BROADCAST_AT_MS 500 /* into each second: read the cluster's sums, send the event */

/* ---- rule id -> slot ---------------------------------------------------------- */

/*
 * Rule ids map to slots through a lock-free open-addressing table. The
 * check path looks ids up and adds the ones it has not seen (claiming a
 * free slot by compare-and-swap, or RK_STATS_OTHER when none is free). Only
 * the statistics thread takes entries out (tend_slots): it marks an entry
 * gone, so that probes pass over it, and frees its slot a second later,
 * once no check can still hold it. Gone entries pile up until the thread
 * copies the live ones into the other table and switches to it; a check
 * that added an entry to the table being replaced looks again in the new one.
 */

#define INTERN_CAP 4096
#define INTERN_MAX_USED 3584   /* the check path adds no entry past this (the table is rebuilt) */
#define INTERN_REBUILD_AT 2048 /* entries, gone ones included, that make the thread rebuild */

enum { ENTRY_EMPTY = 0, ENTRY_WRITING, ENTRY_READY, ENTRY_GONE };

typedef struct {
    _Atomic int state;
    _Atomic uint32_t slot; /* RK_STATS_OTHER: no slot of its own (yet) */
    int64_t gone_since_ms; /* the statistics thread's: its rule left the ruleset then */
    char id[RK_RULE_ID_MAX + 1];
} intern_t;

typedef struct {
    intern_t e[INTERN_CAP];
    _Atomic size_t used; /* entries not empty */
} intern_tab_t;

static intern_tab_t intern_tabs[2];
static _Atomic(intern_tab_t *) intern_cur = &intern_tabs[0];
static _Atomic int slot_taken[RK_STATS_MAX_RULES];
static _Atomic size_t claim_hint;
static char slot_names[RK_STATS_SLOTS][RK_RULE_ID_MAX + 1];
static _Atomic int slot_ready[RK_STATS_SLOTS];
static _Atomic bool other_used; /* a count went to "_other" */
/* Cumulative counts of a slot's earlier owners: /metrics starts a new owner at 0. */
static _Atomic uint64_t slot_base[RK_STATS_SLOTS][RK_STAT_FIELDS];

/* Claims a free slot for id, or answers RK_STATS_OTHER when every one is taken. */
static size_t claim_slot(const char *id, size_t len) {
    size_t start = atomic_load_explicit(&claim_hint, memory_order_relaxed);
    for (size_t k = 0; k < RK_STATS_MAX_RULES; k++) {
        size_t s = (start + k) % RK_STATS_MAX_RULES;
        int expect = 0;
        if (atomic_load_explicit(&slot_taken[s], memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&slot_taken[s], &expect, 1))
            continue;
        atomic_store_explicit(&claim_hint, s + 1, memory_order_relaxed);
        memcpy(slot_names[s], id, len);
        slot_names[s][len] = '\0';
        atomic_store_explicit(&slot_ready[s], 1, memory_order_release);
        return s;
    }
    atomic_store(&other_used, true);
    return RK_STATS_OTHER;
}

/*
 * The slot of id (len bytes, hash h) in tab. With insert, adds an unseen id
 * (*claimed: the slot it took, else SIZE_MAX); without, answers SIZE_MAX
 * for an unseen id.
 */
static size_t tab_lookup(intern_tab_t *tab, const char *id, size_t len, uint64_t h, bool insert,
                         size_t *claimed) {
    *claimed = SIZE_MAX;
    for (size_t probe = 0; probe < INTERN_CAP; probe++) {
        intern_t *e = &tab->e[(h + probe) & (INTERN_CAP - 1)];
        int st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == ENTRY_EMPTY) {
            if (!insert)
                return SIZE_MAX;
            if (atomic_load_explicit(&tab->used, memory_order_relaxed) >= INTERN_MAX_USED)
                return RK_STATS_OTHER;
            int expect = ENTRY_EMPTY;
            if (atomic_compare_exchange_strong(&e->state, &expect, ENTRY_WRITING)) {
                atomic_fetch_add(&tab->used, 1);
                memcpy(e->id, id, len);
                e->id[len] = '\0';
                e->gone_since_ms = 0;
                size_t slot = claim_slot(id, len);
                *claimed = slot;
                atomic_store_explicit(&e->slot, (uint32_t)slot, memory_order_relaxed);
                atomic_store_explicit(&e->state, ENTRY_READY, memory_order_release);
                return slot;
            }
            st = expect;
        }
        while (st == ENTRY_WRITING) /* another thread is writing this entry: a few stores away */
            st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == ENTRY_READY && strncmp(e->id, id, len) == 0 && e->id[len] == '\0')
            return atomic_load_explicit(&e->slot, memory_order_acquire);
    }
    return insert ? RK_STATS_OTHER : SIZE_MAX;
}

/*
 * The slot of id (len bytes). With insert, takes a new slot for an unseen
 * id (RK_STATS_OTHER when none is free); without, answers SIZE_MAX for an
 * unseen id. Lock-free.
 */
static size_t slot_lookup(const char *id, size_t len, bool insert) {
    if (len == 0 || len > RK_RULE_ID_MAX)
        return insert ? RK_STATS_OTHER : SIZE_MAX;
    uint64_t h = rk_fnv1a(RK_FNV1A_INIT, id, len);
    size_t earlier = SIZE_MAX; /* a slot taken in a table replaced meanwhile */
    for (;;) {
        intern_tab_t *tab = atomic_load_explicit(&intern_cur, memory_order_acquire);
        size_t claimed, slot = tab_lookup(tab, id, len, h, insert, &claimed);
        if (claimed != SIZE_MAX && claimed < RK_STATS_MAX_RULES)
            earlier = claimed;
        if (atomic_load_explicit(&intern_cur, memory_order_acquire) == tab) {
            /* the copy missed the entry that slot was taken for: the thread frees it */
            if (earlier != SIZE_MAX && earlier != slot)
                atomic_store_explicit(&slot_ready[earlier], 0, memory_order_release);
            return slot;
        }
    }
}

size_t rk_stats_slot(const char *rule_id, size_t len) {
    if (len == sizeof RK_STATS_CHECKS_NAME - 1 && !memcmp(rule_id, RK_STATS_CHECKS_NAME, len))
        return RK_RING_CHECKS;
    if (len == sizeof RK_STATS_OTHER_NAME - 1 && !memcmp(rule_id, RK_STATS_OTHER_NAME, len)) {
        atomic_store(&other_used, true); /* another instance's lumped counts */
        return RK_STATS_OTHER;
    }
    return slot_lookup(rule_id, len, true);
}

const char *rk_stats_slot_rule(size_t slot) {
    if (slot == RK_STATS_OTHER)
        return atomic_load(&other_used) ? RK_STATS_OTHER_NAME : NULL;
    if (slot > RK_STATS_OTHER || !atomic_load_explicit(&slot_ready[slot], memory_order_acquire))
        return NULL;
    return slot_names[slot];
}

uint64_t rk_stats_slot_base(size_t slot, int field) {
    return slot < RK_STATS_SLOTS
               ? atomic_load_explicit(&slot_base[slot][field], memory_order_relaxed)
               : 0;
}

/* ---- per-thread counters (the hot path) ----------------------------------------- */

typedef struct block {
    struct block *next;
    _Atomic uint64_t counts[RK_STATS_SLOTS][RK_STAT_FIELDS];
    _Atomic uint64_t hist[RK_STATS_HIST_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t store_errors;
    _Atomic uint64_t checks[RK_STAT_FIELDS]; /* requests, each once */
} block_t;

static _Atomic(block_t *) blocks; /* every thread's, never freed (reachable) */
static _Thread_local block_t *my_block;

/* This thread's block, allocated and linked on its first count. */
static block_t *thread_block(void) {
    if (RK_LIKELY(my_block != NULL))
        return my_block;
    block_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    block_t *head = atomic_load(&blocks);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak(&blocks, &head, b));
    my_block = b;
    return b;
}

/* Adds n to a counter only this thread writes. */
static inline void bump(_Atomic uint64_t *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static const char *const access_decisions[RK_STAT_FIELDS] = {"allowed", "denied", "shadow_denied",
                                                             "error"};

void rk_stats_count(const rk_check_item_t *items, size_t n, int64_t duration_ns) {
    block_t *b = thread_block();
    if (RK_UNLIKELY(!b))
        return;
    bool store_failed = false;
    int64_t now_ms = 0;
    uint64_t checks = 0;
    for (size_t i = 0; i < n; i++) {
        const rk_check_item_t *it = &items[i];
        checks += it->opens_check;
        if (it->rule->mode == RK_MODE_OFF)
            continue;
        int field;
        if (RK_UNLIKELY(it->failed_over)) {
            field = RK_STAT_ERRORS;
            store_failed = true;
        } else if (it->decision.allowed) {
            field = RK_STAT_ALLOWED;
        } else {
            field = it->rule->mode == RK_MODE_SHADOW ? RK_STAT_SHADOW_DENIED : RK_STAT_DENIED;
            if (!now_ms)
                now_ms = rk_now_ms();
            rk_audit_record(it, now_ms);
        }
        size_t slot = slot_lookup(it->rule->id, strnlen(it->rule->id, RK_RULE_ID_MAX + 1), true);
        bump(&b->counts[slot][field], 1);
        if (RK_UNLIKELY(rk_rt.cfg.access_log))
            rk_audit_access(it, access_decisions[field]);
    }
    /* Every check of the group waited for the group's one round trip: that is its time. */
    size_t bucket = 0;
    while (bucket < RK_STATS_HIST_BUCKETS && duration_ns > rk_stats_hist_bounds_ns[bucket])
        bucket++;
    bump(&b->hist[bucket], checks);
    bump(&b->sum_ns, checks * (duration_ns > 0 ? (uint64_t)duration_ns : 0));
    if (store_failed)
        bump(&b->store_errors, 1);
}

/*
 * The field a check counts under, of the items of its rules; -1 when no rule
 * decided it (every one switched off). A denial the store gave beats a fail
 * mode's answer: the request was refused by its limit, whatever the rest.
 */
static int check_outcome(const rk_check_item_t *items, size_t n) {
    bool decided = false, failed = false;
    for (size_t i = 0; i < n; i++) {
        const rk_check_item_t *it = &items[i];
        if (it->rule->mode == RK_MODE_OFF)
            continue;
        decided = true;
        failed |= it->failed_over;
        if (!it->decision.allowed && it->rule->mode == RK_MODE_ENFORCE && !it->failed_over)
            return RK_STAT_DENIED;
    }
    if (!decided)
        return -1;
    return failed ? RK_STAT_ERRORS : RK_STAT_ALLOWED;
}

void rk_stats_count_checks(const rk_check_item_t *items, size_t n) {
    block_t *b = thread_block();
    if (RK_UNLIKELY(!b))
        return;
    for (size_t start = 0, end; start < n; start = end) {
        end = start + 1;
        while (end < n && !items[end].opens_check)
            end++;
        int field = check_outcome(items + start, end - start);
        if (field >= 0)
            bump(&b->checks[field], 1);
    }
}

void rk_stats_count_listed(bool denied, size_t n) {
    block_t *b = thread_block();
    if (RK_LIKELY(b != NULL) && n > 0)
        bump(&b->checks[denied ? RK_STAT_DENIED : RK_STAT_ALLOWED], n);
}

void rk_stats_checks_cumulative(uint64_t checks[RK_STAT_FIELDS]) {
    memset(checks, 0, RK_STAT_FIELDS * sizeof *checks);
    for (block_t *b = atomic_load(&blocks); b; b = b->next)
        for (int f = 0; f < RK_STAT_FIELDS; f++)
            checks[f] += atomic_load_explicit(&b->checks[f], memory_order_relaxed);
}

void rk_stats_cumulative(uint64_t (*per_slot)[RK_STAT_FIELDS], rk_stats_latency_t *lat) {
    if (per_slot)
        memset(per_slot, 0, RK_STATS_SLOTS * sizeof *per_slot);
    if (lat)
        memset(lat, 0, sizeof *lat);
    for (block_t *b = atomic_load(&blocks); b; b = b->next) {
        if (per_slot)
            for (size_t s = 0; s < RK_STATS_SLOTS; s++)
                for (int f = 0; f < RK_STAT_FIELDS; f++)
                    per_slot[s][f] += atomic_load_explicit(&b->counts[s][f], memory_order_relaxed);
        if (!lat)
            continue;
        for (size_t i = 0; i <= RK_STATS_HIST_BUCKETS; i++) {
            uint64_t v = atomic_load_explicit(&b->hist[i], memory_order_relaxed);
            lat->buckets[i] += v;
            lat->count += v;
        }
        lat->sum_ns += atomic_load_explicit(&b->sum_ns, memory_order_relaxed);
        lat->store_errors += atomic_load_explicit(&b->store_errors, memory_order_relaxed);
    }
}

/* ---- the background state ------------------------------------------------------- */

static struct {
    pthread_mutex_t lock; /* running, wake */
    pthread_cond_t wake;
    bool running;
    pthread_t thread;

    pthread_mutex_t view_lock; /* the rings */
    rk_ring_t local;
    rk_ring_t cluster_view;
    bool cluster;         /* set at start: the store is Redis (one server or a cluster) */
    rk_cluster_t *pub;    /* the thread's connection */
    rk_cluster_t *reader; /* the admin plane's (top keys), under reader_lock */
    pthread_mutex_t reader_lock;

    pthread_mutex_t top_lock; /* the maps below */
    bool top_closed;
    rk_topk_t pending;              /* Redis: denied keys since the last publication */
    rk_topk_t minutes[TOP_MINUTES]; /* embedded: denied keys per minute */
    int64_t minute_of[TOP_MINUTES];

    /* Redis: the first second a failed publication left behind (0: none) */
    int64_t unpublished_from;
    rk_cluster_second_t backlog[RK_RING_SECONDS];

    /* the slots, as the thread tends them (tend_slots) */
    int64_t last_seen_s[RK_STATS_SLOTS];  /* the newest second a ring holds the slot in */
    bool retiring[RK_STATS_MAX_RULES];    /* taken out of use: free on the next pass */
    bool orphan_seen[RK_STATS_MAX_RULES]; /* taken, but no entry named it on the last pass */
    int64_t rebuilt_ms;

    uint64_t prev[RK_STATS_SLOTS][RK_STAT_FIELDS]; /* the thread's last sum */
    uint64_t cur[RK_STATS_SLOTS][RK_STAT_FIELDS];
    uint64_t prev_checks[RK_STAT_FIELDS];
    rk_ring_entry_t entries[RK_STATS_SLOTS + 1]; /* the rules', then the checks' */

    _Atomic int64_t instances;
    _Atomic int64_t announced_version; /* the newest version a rule event told */
    char instance_id[128];
} S = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .view_lock = PTHREAD_MUTEX_INITIALIZER,
       .reader_lock = PTHREAD_MUTEX_INITIALIZER,
       .top_lock = PTHREAD_MUTEX_INITIALIZER,
       .instances = 1};

int64_t rk_stats_instances(void) {
    return atomic_load(&S.instances);
}

const char *rk_stats_instance_id(void) {
    if (!S.instance_id[0]) {
        char host[64] = "ratekitd";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        unsigned char raw[3];
        char hex[7] = "000000";
        if (rk_random_bytes(raw, sizeof raw) == RK_OK)
            rk_hex(raw, sizeof raw, hex);
        snprintf(S.instance_id, sizeof S.instance_id, "%s-%ld-%s", host, (long)getpid(), hex);
    }
    return S.instance_id;
}

/* The ring reads answer from (view_lock held). */
static const rk_ring_t *view(void) {
    return S.cluster ? &S.cluster_view : &S.local;
}

/* ---- denied keys (called on the denial log's writer thread) ---------------------- */

/* The most denied keys count real denials: a shadow rule's would-denies are only logged. */
static void on_denials(const rk_violation_t *rows, size_t n) {
    pthread_mutex_lock(&S.top_lock);
    for (size_t i = 0; i < n && !S.top_closed; i++) {
        if (rows[i].mode == RK_VIOLATION_SHADOW)
            continue;
        char joined[RK_RULE_ID_MAX + RK_STORE_KEY_MAX + 3];
        int len = snprintf(joined, sizeof joined, "%s\t%s", rows[i].rule, rows[i].key);
        if (len <= 0 || (size_t)len >= sizeof joined)
            continue;
        if (S.cluster) {
            rk_topk_add(&S.pending, joined, (size_t)len, (uint64_t)rows[i].count);
            continue;
        }
        int64_t minute = rows[i].at_ms / 60000;
        size_t idx = (size_t)(minute % TOP_MINUTES);
        if (S.minute_of[idx] != minute) {
            rk_topk_free(&S.minutes[idx]);
            S.minute_of[idx] = minute;
        }
        rk_topk_add(&S.minutes[idx], joined, (size_t)len, (uint64_t)rows[i].count);
    }
    pthread_mutex_unlock(&S.top_lock);
}

rk_status_t rk_stats_top(const char *rule, int64_t window_s, rk_stats_top_t *out, size_t k,
                         size_t *n) {
    *n = 0;
    /* The minutes that overlap the last window_s seconds: nothing older than
     * the start of the minute the window begins in (at most 59 s before it). */
    int64_t now_s = rk_now_ms() / 1000;
    int64_t now_min = now_s / 60, from_min = (now_s - window_s) / 60;
    if (from_min > now_min)
        from_min = now_min;
    if (from_min < now_min - (TOP_MINUTES - 1))
        from_min = now_min - (TOP_MINUTES - 1);
    rk_topk_t acc;
    /* room for every key the minutes may hold, allocated on the first key */
    rk_topk_init(&acc, (size_t)(now_min - from_min + 1) * (S.cluster ? 1000 : TOP_KEYS_PER_MINUTE));
    rk_status_t st = RK_OK;
    if (S.cluster) {
        pthread_mutex_lock(&S.reader_lock);
        st = S.reader ? rk_cluster_top(S.reader, rule, from_min, now_min, &acc) : RK_ERR;
        pthread_mutex_unlock(&S.reader_lock);
    } else {
        pthread_mutex_lock(&S.top_lock);
        for (int64_t m = from_min; m <= now_min; m++) {
            const rk_topk_t *t = &S.minutes[m % TOP_MINUTES];
            if (S.minute_of[m % TOP_MINUTES] != m)
                continue;
            for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].key)
                    rk_topk_add(&acc, t->slots[i].key, strlen(t->slots[i].key), t->slots[i].count);
        }
        pthread_mutex_unlock(&S.top_lock);
    }
    char prefix[RK_RULE_ID_MAX + 2] = "";
    if (rule)
        snprintf(prefix, sizeof prefix, "%s\t", rule);
    rk_topk_entry_t *top = k ? malloc(k * sizeof *top) : NULL;
    size_t got = top ? rk_topk_top(&acc, prefix, top, k) : 0;
    for (size_t i = 0; i < got; i++) {
        const char *tab = strchr(top[i].key, '\t');
        if (!tab)
            continue;
        snprintf(out[*n].rule, sizeof out[*n].rule, "%.*s", (int)(tab - top[i].key), top[i].key);
        snprintf(out[*n].key, sizeof out[*n].key, "%s", tab + 1);
        out[*n].denied = top[i].count;
        (*n)++;
    }
    free(top);
    rk_topk_free(&acc);
    return st;
}

/* ---- reclaiming the slots of deleted rules (the statistics thread) ------------------ */

#define SLOTS_KEPT_FREE 64 /* free slots kept for new rules, taken from deleted rules' */

/* Notes that second t of a ring holds these slots. */
static void note_seen(int64_t t, const rk_ring_entry_t *entries, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (entries[i].slot < RK_STATS_SLOTS && S.last_seen_s[entries[i].slot] < t)
            S.last_seen_s[entries[i].slot] = t;
}

/* Frees the slots taken out of use on the last pass: no check holds them any more. */
static void free_retiring(void) {
    for (size_t s = 0; s < RK_STATS_MAX_RULES; s++) {
        if (!S.retiring[s])
            continue;
        for (int f = 0; f < RK_STAT_FIELDS; f++)
            atomic_store_explicit(&slot_base[s][f], S.prev[s][f], memory_order_relaxed);
        S.retiring[s] = S.orphan_seen[s] = false;
        S.last_seen_s[s] = 0;
        atomic_store_explicit(&slot_taken[s], 0, memory_order_release);
    }
}

/* Takes a gone rule's entry and slot out of use; its per-rule history goes with it. */
static void retire(intern_t *e) {
    uint32_t slot = atomic_load(&e->slot);
    atomic_store_explicit(&e->state, ENTRY_GONE, memory_order_release);
    atomic_store_explicit(&slot_ready[slot], 0, memory_order_release);
    pthread_mutex_lock(&S.view_lock);
    rk_ring_drop_slot(&S.local, slot);
    rk_ring_drop_slot(&S.cluster_view, slot);
    pthread_mutex_unlock(&S.view_lock);
    S.retiring[slot] = true;
}

/*
 * Copies the live entries of tab into the other table and switches to it.
 * The other table was left RK_RULES_GRACE_MS ago at least: no check reads it.
 */
static void rebuild(intern_tab_t *tab, int64_t now_ms) {
    intern_tab_t *next = tab == &intern_tabs[0] ? &intern_tabs[1] : &intern_tabs[0];
    memset(next, 0, sizeof *next);
    size_t used = 0;
    for (size_t i = 0; i < INTERN_CAP; i++) {
        const intern_t *e = &tab->e[i];
        if (atomic_load_explicit(&e->state, memory_order_acquire) != ENTRY_READY)
            continue;
        size_t len = strlen(e->id);
        uint64_t h = rk_fnv1a(RK_FNV1A_INIT, e->id, len);
        size_t at = (size_t)h & (INTERN_CAP - 1);
        while (atomic_load_explicit(&next->e[at].state, memory_order_relaxed) != ENTRY_EMPTY)
            at = (at + 1) & (INTERN_CAP - 1);
        intern_t *to = &next->e[at];
        memcpy(to->id, e->id, len + 1);
        to->gone_since_ms = e->gone_since_ms;
        atomic_store_explicit(&to->slot, atomic_load(&e->slot), memory_order_relaxed);
        atomic_store_explicit(&to->state, ENTRY_READY, memory_order_relaxed);
        used++;
    }
    atomic_store_explicit(&next->used, used, memory_order_relaxed);
    atomic_store_explicit(&intern_cur, next, memory_order_release);
    S.rebuilt_ms = now_ms;
}

typedef struct {
    intern_t *e;
    int64_t seen;
} gone_t;

static int by_seen(const void *a, const void *b) {
    int64_t x = ((const gone_t *)a)->seen, y = ((const gone_t *)b)->seen;
    return (x > y) - (x < y);
}

/* Gives the rules without a slot of their own (under "_other") the free slots. */
static void promote(intern_tab_t *tab, bool (*live)(const char *id, void *ctx), void *ctx) {
    for (size_t i = 0; i < INTERN_CAP; i++) {
        intern_t *e = &tab->e[i];
        if (atomic_load_explicit(&e->state, memory_order_acquire) != ENTRY_READY ||
            atomic_load(&e->slot) != RK_STATS_OTHER || !live(e->id, ctx))
            continue;
        size_t s = claim_slot(e->id, strlen(e->id));
        if (s == RK_STATS_OTHER)
            return;
        atomic_store_explicit(&e->slot, (uint32_t)s, memory_order_release);
    }
}

void rk_stats_slots_tend(bool (*live)(const char *id, void *ctx), void *ctx, int64_t now_ms) {
    static gone_t gone[INTERN_CAP];
    intern_tab_t *tab = atomic_load_explicit(&intern_cur, memory_order_acquire);
    free_retiring();
    bool referenced[RK_STATS_MAX_RULES] = {false};
    size_t ngone = 0, lumped = 0, dead = 0;
    for (size_t i = 0; i < INTERN_CAP; i++) {
        intern_t *e = &tab->e[i];
        int st = atomic_load_explicit(&e->state, memory_order_acquire);
        dead += st == ENTRY_GONE;
        if (st != ENTRY_READY)
            continue;
        uint32_t slot = atomic_load(&e->slot);
        if (slot < RK_STATS_MAX_RULES)
            referenced[slot] = true;
        if (live(e->id, ctx)) {
            e->gone_since_ms = 0;
            lumped += slot == RK_STATS_OTHER;
        } else if (!e->gone_since_ms) {
            e->gone_since_ms = now_ms;
        } else if (now_ms - e->gone_since_ms >= RK_RULES_GRACE_MS) {
            /* no check holds the rule any more: its counts are all in */
            if (slot < RK_STATS_MAX_RULES) {
                gone[ngone++] = (gone_t){e, S.last_seen_s[slot]};
            } else {
                atomic_store_explicit(&e->state, ENTRY_GONE, memory_order_release);
                dead++;
            }
        }
    }
    /* The gone rules whose counts left every window go; the others, least
     * recently counted first, only to keep free slots for new rules. */
    size_t free_slots = 0;
    for (size_t s = 0; s < RK_STATS_MAX_RULES; s++)
        free_slots += !atomic_load(&slot_taken[s]);
    qsort(gone, ngone, sizeof *gone, by_seen);
    for (size_t i = 0; i < ngone; i++) {
        bool aged_out = gone[i].seen <= now_ms / 1000 - RK_RING_SECONDS;
        if (!aged_out && free_slots >= SLOTS_KEPT_FREE + lumped)
            break;
        referenced[atomic_load(&gone[i].e->slot)] = false;
        retire(gone[i].e);
        free_slots++;
        dead++;
    }
    /* A slot no entry names (its entry missed a rebuild) is freed on the second pass. */
    for (size_t s = 0; s < RK_STATS_MAX_RULES; s++) {
        bool orphan = atomic_load(&slot_taken[s]) && !referenced[s] && !S.retiring[s];
        if (orphan && S.orphan_seen[s]) {
            atomic_store_explicit(&slot_ready[s], 0, memory_order_release);
            S.retiring[s] = true;
        }
        S.orphan_seen[s] = orphan;
    }
    if (lumped)
        promote(tab, live, ctx);
    if (atomic_load(&tab->used) >= INTERN_REBUILD_AT && dead > 0 &&
        now_ms - S.rebuilt_ms >= RK_RULES_GRACE_MS)
        rebuild(tab, now_ms);
}

/* ---- reads ------------------------------------------------------------------------ */

static int by_rule(const void *a, const void *b) {
    return strcmp(((const rk_stats_rule_t *)a)->rule, ((const rk_stats_rule_t *)b)->rule);
}

rk_status_t rk_stats_window(int64_t from, int64_t to, uint64_t totals[RK_STAT_FIELDS],
                            uint64_t checks[RK_STAT_FIELDS], rk_stats_rule_t **rules,
                            size_t *nrules) {
    uint64_t(*per_slot)[RK_STAT_FIELDS] = calloc(RK_STATS_SLOTS, sizeof *per_slot);
    *rules = NULL;
    *nrules = 0;
    memset(totals, 0, RK_STAT_FIELDS * sizeof *totals);
    memset(checks, 0, RK_STAT_FIELDS * sizeof *checks);
    if (!per_slot)
        return RK_ERR;
    pthread_mutex_lock(&S.view_lock);
    rk_ring_sum(view(), from, to, totals, per_slot, RK_STATS_SLOTS, checks);
    pthread_mutex_unlock(&S.view_lock);
    size_t n = 0;
    for (size_t s = 0; s < RK_STATS_SLOTS; s++)
        if (rk_stats_slot_rule(s) &&
            (per_slot[s][0] | per_slot[s][1] | per_slot[s][2] | per_slot[s][3]))
            n++;
    rk_stats_rule_t *out = n ? calloc(n, sizeof *out) : NULL;
    if (n && !out) {
        free(per_slot);
        return RK_ERR;
    }
    size_t j = 0;
    for (size_t s = 0; s < RK_STATS_SLOTS && j < n; s++) {
        const char *name = rk_stats_slot_rule(s);
        if (!name || !(per_slot[s][0] | per_slot[s][1] | per_slot[s][2] | per_slot[s][3]))
            continue;
        snprintf(out[j].rule, sizeof out[j].rule, "%.64s", name);
        memcpy(out[j].n, per_slot[s], sizeof out[j].n);
        j++;
    }
    free(per_slot);
    if (j > 1)
        qsort(out, j, sizeof *out, by_rule);
    *rules = out;
    *nrules = j;
    return RK_OK;
}

bool rk_stats_series(const char *rule, int64_t from, int64_t to, int64_t step,
                     uint64_t (*out)[RK_STAT_FIELDS], uint64_t (*checks)[RK_STAT_FIELDS]) {
    size_t points = (size_t)((to - from) / step + 1);
    memset(out, 0, points * sizeof *out);
    if (checks)
        memset(checks, 0, points * sizeof *checks);
    long slot = -1;
    if (rule) {
        size_t s = slot_lookup(rule, strlen(rule), false);
        if (s == SIZE_MAX)
            return true;
        if (s == RK_STATS_OTHER)
            return false;
        slot = (long)s;
    }
    pthread_mutex_lock(&S.view_lock);
    for (size_t i = 0; i < points; i++) {
        int64_t start = from + (int64_t)i * step;
        for (int64_t t = start; t < start + step && t <= to; t++) {
            uint64_t c[RK_STAT_FIELDS];
            rk_ring_counts(view(), t, slot, c);
            for (int f = 0; f < RK_STAT_FIELDS; f++)
                out[i][f] += c[f];
            if (!checks)
                continue;
            rk_ring_counts(view(), t, (long)RK_RING_CHECKS, c);
            for (int f = 0; f < RK_STAT_FIELDS; f++)
                checks[i][f] += c[f];
        }
    }
    pthread_mutex_unlock(&S.view_lock);
    return true;
}

/* ---- the background thread ---------------------------------------------------------- */

/*
 * Sums every thread's counters and turns the growth since last time into
 * entries: the rules', then the checks' (slot RK_RING_CHECKS).
 */
static size_t fold(void) {
    rk_stats_cumulative(S.cur, NULL);
    size_t n = 0;
    for (size_t s = 0; s < RK_STATS_SLOTS; s++) {
        bool any = false;
        rk_ring_entry_t *e = &S.entries[n];
        for (int f = 0; f < RK_STAT_FIELDS; f++) {
            e->n[f] = S.cur[s][f] - S.prev[s][f];
            any |= e->n[f] != 0;
            S.prev[s][f] = S.cur[s][f];
        }
        if (any) {
            e->slot = (uint32_t)s;
            n++;
        }
    }
    uint64_t checks[RK_STAT_FIELDS];
    rk_stats_checks_cumulative(checks);
    rk_ring_entry_t *e = &S.entries[n];
    bool any = false;
    for (int f = 0; f < RK_STAT_FIELDS; f++) {
        e->n[f] = checks[f] - S.prev_checks[f];
        any |= e->n[f] != 0;
        S.prev_checks[f] = checks[f];
    }
    if (any) {
        e->slot = RK_RING_CHECKS;
        n++;
    }
    return n;
}

static void put_cluster_second(int64_t t, const rk_ring_entry_t *entries, size_t n) {
    pthread_mutex_lock(&S.view_lock);
    rk_ring_put(&S.cluster_view, t, entries, n);
    pthread_mutex_unlock(&S.view_lock);
    note_seen(t, entries, n);
}

/* Appends {"allowed":..,"denied":..,"shadow_denied":..,"errors":..}. */
static void write_counts(rk_jw_t *w, const uint64_t n[RK_STAT_FIELDS]) {
    for (int f = 0; f < RK_STAT_FIELDS; f++) {
        rk_jw_lit(w, f == 0 ? "{" : ",");
        rk_jw_str(w, rk_stat_field_names[f]);
        rk_jw_lit(w, ":");
        rk_jw_int(w, (int64_t)n[f]);
    }
    rk_jw_lit(w, "}");
}

/* Appends {"allowed":..,"denied":..,"errors":..}: a check is never shadow denied. */
static void write_checks(rk_jw_t *w, const uint64_t n[RK_STAT_FIELDS]) {
    static const int fields[] = {RK_STAT_ALLOWED, RK_STAT_DENIED, RK_STAT_ERRORS};
    for (size_t i = 0; i < RK_ARRAY_LEN(fields); i++) {
        rk_jw_lit(w, i == 0 ? "{" : ",");
        rk_jw_str(w, rk_stat_field_names[fields[i]]);
        rk_jw_lit(w, ":");
        rk_jw_int(w, (int64_t)n[fields[i]]);
    }
    rk_jw_lit(w, "}");
}

/* Sends the `stats` event of second t from the view. */
static void broadcast_second(int64_t t) {
    char stack[4096];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_jw_lit(&w, "{\"t\":");
    rk_jw_int(&w, t);
    pthread_mutex_lock(&S.view_lock);
    const rk_ring_second_t *s = rk_ring_get(view(), t);
    static const uint64_t zero[RK_STAT_FIELDS];
    rk_jw_lit(&w, ",\"totals\":");
    write_counts(&w, s ? s->totals : zero);
    rk_jw_lit(&w, ",\"checks\":");
    write_checks(&w, s ? s->checks : zero);
    rk_jw_lit(&w, ",\"rules\":{");
    bool first = true;
    for (size_t i = 0; s && i < s->len; i++) {
        const char *name = rk_stats_slot_rule(s->entries[i].slot);
        if (!name)
            continue;
        if (!first)
            rk_jw_lit(&w, ",");
        first = false;
        rk_jw_str(&w, name);
        rk_jw_lit(&w, ":");
        write_counts(&w, s->entries[i].n);
    }
    pthread_mutex_unlock(&S.view_lock);
    rk_jw_lit(&w, "}}");
    if (!w.failed)
        rk_stream_publish("stats", w.buf, w.len);
    rk_jw_free(&w);
}

static void publish_rule_event(int64_t version, const char *rule_id, const char *action) {
    char stack[256];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_jw_lit(&w, "{\"version\":");
    rk_jw_int(&w, version);
    rk_jw_lit(&w, ",\"rule\":");
    if (rule_id)
        rk_jw_str(&w, rule_id);
    else
        rk_jw_lit(&w, "null");
    rk_jw_member_str(&w, "action", action);
    rk_jw_lit(&w, "}");
    if (!w.failed)
        rk_stream_publish("rule", w.buf, w.len);
    rk_jw_free(&w);
    int64_t seen = atomic_load(&S.announced_version);
    while (version > seen && !atomic_compare_exchange_weak(&S.announced_version, &seen, version))
        ;
}

/* The rules changed (an admin thread, or the rules reload thread): log and tell the streams. */
static void on_rule_change(int64_t version, const char *rule_id, const char *action) {
    rk_info("rules: %s %s (ruleset version %lld)", action, rule_id ? rule_id : "(all rules)",
            (long long)version);
    publish_rule_event(version, rule_id, action);
}

/* Whether id names a rule of the ruleset ctx. */
static bool in_ruleset(const char *id, void *ctx) {
    return rk_ruleset_find(ctx, id) != NULL;
}

/* Sleeps until wall-clock second `second` + at_ms; false when stopping. */
static bool sleep_until(int64_t second, int64_t at_ms) {
    struct timespec ts = {(time_t)second, (long)at_ms * 1000000L};
    pthread_mutex_lock(&S.lock);
    while (S.running) {
        if (pthread_cond_timedwait(&S.wake, &S.lock, &ts) != 0 &&
            rk_now_ms() >= second * 1000 + at_ms)
            break;
    }
    bool running = S.running;
    pthread_mutex_unlock(&S.lock);
    return running;
}

/*
 * Publishes this instance's second t to Redis (Redis store only), with the
 * seconds a failed publication left behind, read from the local ring (its
 * 15 minutes at most; this thread is the ring's only writer, so it reads it
 * without the lock). The counts are set, so a second sent again is not
 * counted twice; the denied keys go once, with the second they came in.
 * Answers whether seconds before t went out, which the view must read back.
 */
static bool publish_cluster(int64_t t) {
    rk_topk_t denied;
    pthread_mutex_lock(&S.top_lock);
    denied = S.pending;
    rk_topk_init(&S.pending, TOP_KEYS_PER_SECOND);
    pthread_mutex_unlock(&S.top_lock);
    int64_t from = S.unpublished_from ? S.unpublished_from : t;
    if (from < t - RK_RING_SECONDS + 1)
        from = t - RK_RING_SECONDS + 1;
    size_t n = 0;
    for (int64_t s = from; s <= t; s++) {
        const rk_ring_second_t *sec = rk_ring_get(&S.local, s);
        if (sec && sec->len)
            S.backlog[n++] = (rk_cluster_second_t){s, sec->entries, sec->len};
    }
    rk_status_t st = rk_cluster_publish(S.pub, rk_stats_instance_id(), rk_now_ms(), S.backlog, n,
                                        t / 60, &denied);
    rk_topk_free(&denied);
    if (st != RK_OK) {
        if (!S.unpublished_from)
            S.unpublished_from = t;
        return false;
    }
    S.unpublished_from = 0;
    return from < t;
}

/*
 * Reads the cluster's sums of the last seconds back (all 15 minutes after
 * a start or an outage; otherwise the last three, which late instances may
 * still have added to) and counts the live instances.
 */
static void refresh_cluster(int64_t t, bool *backfilled) {
    int64_t from = *backfilled ? t - 2 : t - RK_RING_SECONDS + 1;
    if (rk_cluster_fetch(S.pub, from, t, put_cluster_second) != RK_OK) {
        *backfilled = false;
        /* Redis is away: show this instance's own counts meanwhile */
        pthread_mutex_lock(&S.view_lock);
        const rk_ring_second_t *own = rk_ring_get(&S.local, t);
        rk_ring_put(&S.cluster_view, t, own ? own->entries : NULL, own ? own->len : 0);
        pthread_mutex_unlock(&S.view_lock);
        atomic_store(&S.instances, 1);
        return;
    }
    *backfilled = true;
    int64_t live = rk_cluster_instances(S.pub, rk_now_ms());
    atomic_store(&S.instances, live > 0 ? live : 1);
}

static void *stats_main(void *arg) {
    (void)arg;
    int64_t second = rk_now_ms() / 1000 + 1;
    int64_t last_heartbeat = second, pending_version = -1;
    bool backfilled = false;
    while (sleep_until(second, PUBLISH_AT_MS)) {
        int64_t t = second - 1;
        size_t n = fold();
        pthread_mutex_lock(&S.view_lock);
        rk_ring_put(&S.local, t, S.entries, n);
        pthread_mutex_unlock(&S.view_lock);
        note_seen(t, S.entries, n);
        rk_stats_slots_tend(in_ruleset, (void *)rk_rules_current(), rk_now_ms());
        if (S.cluster && publish_cluster(t))
            backfilled = false; /* read back the seconds that went out late */
        if (!sleep_until(second, BROADCAST_AT_MS))
            break;
        if (S.cluster)
            refresh_cluster(t, &backfilled);
        broadcast_second(t);
        /* A change the listener did not tell (made elsewhere) for a whole second. */
        int64_t version = rk_ruleset_version(rk_rules_current());
        if (version > atomic_load(&S.announced_version)) {
            if (pending_version == version)
                publish_rule_event(version, NULL, "reload");
            pending_version = version;
        }
        if (second - last_heartbeat >= HEARTBEAT_S) {
            rk_stream_heartbeat();
            last_heartbeat = second;
        }
        /* After a stall (a suspended process, a clock step), skip to now. */
        int64_t now_s = rk_now_ms() / 1000;
        second = second + 1 > now_s ? second + 1 : now_s + 1;
    }
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

rk_status_t rk_stats_start(void) {
    rk_stats_instance_id();
    S.cluster = (rk_rt.cfg.redis_url[0] || rk_rt.cfg.redis_cluster[0]) && rk_rt.store &&
                rk_rt.store != rk_rt.fallback;
    if (S.cluster) {
        char err[256];
        rk_store_t *redis_cluster = rk_rt.cfg.redis_cluster[0] ? rk_rt.store : NULL;
        S.pub = rk_cluster_new(&rk_rt.cfg, redis_cluster, err, sizeof err);
        S.reader = S.pub ? rk_cluster_new(&rk_rt.cfg, redis_cluster, err, sizeof err) : NULL;
        if (!S.pub || !S.reader) {
            rk_warn("stats: %s; statistics are this instance's own", err);
            rk_cluster_free(S.pub);
            rk_cluster_free(S.reader);
            S.pub = S.reader = NULL;
            S.cluster = false;
        }
    }
    rk_topk_init(&S.pending, TOP_KEYS_PER_SECOND);
    for (size_t i = 0; i < TOP_MINUTES; i++) {
        rk_topk_init(&S.minutes[i], TOP_KEYS_PER_MINUTE);
        S.minute_of[i] = -1;
    }
    S.top_closed = false;
    atomic_store(&S.announced_version, rk_ruleset_version(rk_rules_current()));
    rk_audit_set_observer(on_denials);
    rk_rules_set_change_listener(on_rule_change);
    pthread_cond_init(&S.wake, NULL);
    S.running = true;
    if (pthread_create(&S.thread, NULL, stats_main, NULL) != 0) {
        S.running = false;
        rk_rules_set_change_listener(NULL);
        rk_error("stats: cannot start the statistics thread");
        return RK_ERR;
    }
    return RK_OK;
}

void rk_stats_stop(void) {
    rk_rules_set_change_listener(NULL);
    rk_stream_stop();
    pthread_mutex_lock(&S.lock);
    bool was = S.running;
    S.running = false;
    pthread_cond_signal(&S.wake);
    pthread_mutex_unlock(&S.lock);
    if (!was)
        return;
    pthread_join(S.thread, NULL);
    pthread_cond_destroy(&S.wake);
    pthread_mutex_lock(&S.reader_lock);
    rk_cluster_free(S.reader);
    S.reader = NULL;
    pthread_mutex_unlock(&S.reader_lock);
    if (S.pub)
        rk_cluster_leave(S.pub, rk_stats_instance_id());
    rk_cluster_free(S.pub);
    S.pub = NULL;
    pthread_mutex_lock(&S.view_lock);
    rk_ring_clear(&S.local);
    rk_ring_clear(&S.cluster_view);
    pthread_mutex_unlock(&S.view_lock);
    pthread_mutex_lock(&S.top_lock);
    S.top_closed = true;
    rk_topk_free(&S.pending);
    for (size_t i = 0; i < TOP_MINUTES; i++)
        rk_topk_free(&S.minutes[i]);
    pthread_mutex_unlock(&S.top_lock);
}
