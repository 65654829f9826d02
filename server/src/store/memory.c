/*
 * memory.c — the embedded store: the state of every (rule, key, algorithm)
 * in this process's memory. It is ratekitd's zero-setup store and the
 * fallback a check uses when Redis fails, so it sits on the hot path of
 * every check.
 *
 * Layout. SHARD_COUNT shards, chosen by the top bits of the entry's
 * identity, each an open-addressing hash table (Robin Hood linear probing,
 * backward-shift deletion, so there are no tombstones) behind its own
 * mutex. A lock is held only around the lookup and decision of one key:
 * there is no global lock on the path of decide().
 *
 * Identity. An entry is named by a 128-bit SipHash-2-4 of (rule_id, key,
 * algorithm) under a random per-process key, and the names themselves are
 * not kept. Two different triples share an entry only if their 128-bit
 * hashes collide: about n^2 / 2^129 for n live keys (below 1e-26 at a
 * billion keys), and the secret key means a client cannot craft a key that
 * lands on someone else's entry, nor flood one slot of a table.
 *
 * Size. An entry is 48 bytes: the identity, one word packing the expiry and
 * the algorithm, and the state (memory_state.h): the rk_cell_t inline, a
 * small sliding_log or concurrency state packed inline, or a pointer to the
 * box of a larger one. Tables are filled to at most 80% and grow by a third,
 * so at least 60% of slots are in use after a growth: at most 80 bytes per
 * key whose state is inline, all slack included. Tables are mapped with
 * mmap so that a table given back on growth returns to the system at once.
 *
 * Expiry. Each entry expires at now + rk_*_ttl_ms(), when its state equals
 * a fresh one; a decision never moves an expiry earlier (a request stamped
 * behind the state's own time gets a ttl counted from that later time). An
 * expired entry found by a lookup is treated as fresh (after asking the
 * algorithm, which knows the state's time); and a decision that inserts
 * (what makes garbage), like every SWEEP_EVERY-th decision of a shard (so
 * that a table whose keys stop coming back still empties), first examines
 * SWEEP_SLOTS slots of its shard from a moving cursor and frees the expired
 * ones. Garbage is collected a little at a time with no background thread,
 * no request ever scans a whole table, and a decision on a live key rarely
 * pays for reading slots it does not need.
 *
 * Bound. At most max_keys entries, counted in one atomic counter that an
 * insert reserves a place in; a decision whose sweep freed entries inserts
 * into one of their places and gives the rest back, so that the counter
 * every core shares is written once per decision, seldom more. When the store
 * is full an insert first looks for an expired entry (a bounded scan of its
 * shard, then of a few other shards taken with trylock), then evicts the
 * entry closest to expiry among EVICT_SAMPLE entries of its shard (as
 * Redis's volatile-ttl sampling does), or of another shard when its own is
 * empty. An eviction is counted when the victim had not expired yet; the
 * search for an expired entry is bounded, so a store full of stale entries
 * may now and then evict a live one. The rare insert that finds nothing it
 * may free without waiting is answered as if fresh and not kept: the store
 * never grows past its bound and never blocks on a second lock.
 *
 * Time. now_ms of -1 means the store's clock: rk_now_ms() made monotonic.
 * A given time is clamped to [0, RK_NOW_MS_MAX] as the algorithms do, and
 * the algorithms clamp a clock that runs backwards against the state.
 */
#include "store.h"

#include "memory_state.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHARD_BITS 8
#define SHARD_COUNT (1u << SHARD_BITS)
#define SWEEP_SLOTS 8      /* slots a sweep examines for expired entries */
#define SWEEP_EVERY 8      /* a shard's decisions between sweeps, inserts aside (a power of two) */
#define FULL_SCAN_SLOTS 64 /* slots of a shard examined for an expired entry when full */
#define FULL_SCAN_SHARDS 8 /* other shards searched (trylock) for one */
#define EVICT_SAMPLE 5     /* entries compared to choose a victim */

/* Tables hold at most LOAD_MAX_NUM/LOAD_MAX_DEN live slots (80%). */
#define LOAD_MAX_NUM 4
#define LOAD_MAX_DEN 5

#define META_EXPIRES_BITS 56
#define META_EXPIRES_MASK ((UINT64_C(1) << META_EXPIRES_BITS) - 1)

/*
 * One slot. meta is 0 in an empty slot; in a live one it packs the expiry
 * (ms since the epoch, below 2^56) and algorithm + 1 in the top byte.
 */
typedef struct {
    uint64_t id_lo, id_hi;
    uint64_t meta;
    rk_entry_state_t state;
} entry_t;

_Static_assert(sizeof(entry_t) == 48, "an entry is 48 bytes");

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    entry_t *slots; /* mmap'd, cap entries; NULL until the first insert */
    size_t cap;
    size_t len;     /* live entries */
    size_t cursor;  /* where the next sweep starts */
    unsigned ticks; /* decisions, for SWEEP_EVERY */
    uint64_t rng;   /* xorshift64 state for eviction samples */
} shard_t;

/* What decisions write, on a cache line of its own (see memory_store_t). */
typedef struct {
    _Alignas(64) atomic_size_t count; /* places taken: live entries, and places in hand */
    atomic_uint_fast64_t anonymous_leases;
} tally_t;

/*
 * What every decision reads comes first, on a cache line that decisions
 * seldom write (the clock once a millisecond, evictions when full): the key
 * count, written on inserts, once shared that line and made the two cores
 * pass it to and fro on every insert.
 */
typedef struct {
    rk_store_t base; /* first: a memory_store_t * is an rk_store_t * */
    size_t max_keys;
    size_t page;
    uint64_t sip_k0, sip_k1;
    atomic_int_fast64_t clock_ms; /* latest rk_now_ms() seen */
    atomic_int_fast64_t evictions;
    tally_t tally;
    shard_t shards[SHARD_COUNT];
} memory_store_t;

static const rk_store_ops_t memory_ops;

/* ==== identity: SipHash-2-4 with a 128-bit output ======================== */

typedef struct {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* bytes not yet compressed, little-endian */
    size_t len;    /* bytes absorbed */
} sip_t;

static inline uint64_t rotl64(uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}

static inline void sip_round(sip_t *h) {
    h->v0 += h->v1;
    h->v1 = rotl64(h->v1, 13);
    h->v1 ^= h->v0;
    h->v0 = rotl64(h->v0, 32);
    h->v2 += h->v3;
    h->v3 = rotl64(h->v3, 16);
    h->v3 ^= h->v2;
    h->v0 += h->v3;
    h->v3 = rotl64(h->v3, 21);
    h->v3 ^= h->v0;
    h->v2 += h->v1;
    h->v1 = rotl64(h->v1, 17);
    h->v1 ^= h->v2;
    h->v2 = rotl64(h->v2, 32);
}

static inline void sip_compress(sip_t *h, uint64_t m) {
    h->v3 ^= m;
    sip_round(h);
    sip_round(h);
    h->v0 ^= m;
}

static void sip_init(sip_t *h, uint64_t k0, uint64_t k1) {
    h->v0 = k0 ^ UINT64_C(0x736f6d6570736575);
    h->v1 = k1 ^ UINT64_C(0x646f72616e646f6d) ^ 0xee; /* 0xee: 128-bit output */
    h->v2 = k0 ^ UINT64_C(0x6c7967656e657261);
    h->v3 = k1 ^ UINT64_C(0x7465646279746573);
    h->tail = 0;
    h->len = 0;
}

/* Absorbs n bytes; whole words at a time when the tail is empty. */
static void sip_update(sip_t *h, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0 && (h->len & 7) != 0) {
        h->tail |= (uint64_t)*p++ << (8 * (h->len & 7));
        if ((++h->len & 7) == 0) {
            sip_compress(h, h->tail);
            h->tail = 0;
        }
        n--;
    }
    for (; n >= 8; n -= 8, p += 8, h->len += 8) {
        uint64_t m;
        memcpy(&m, p, sizeof m);
        sip_compress(h, le64toh(m)); /* SipHash reads words little-endian */
    }
    for (; n > 0; n--, h->len++)
        h->tail |= (uint64_t)*p++ << (8 * (h->len & 7));
}

static void sip_final128(sip_t *h, uint64_t *lo, uint64_t *hi) {
    uint64_t b = ((uint64_t)h->len << 56) | h->tail;
    sip_compress(h, b);
    h->v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        sip_round(h);
    *lo = h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
    h->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        sip_round(h);
    *hi = h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}

/*
 * The 128-bit identity of (rule_id, key, alg). The NUL after each string
 * keeps the encoding unambiguous (neither may contain one).
 */
static void entry_identity(const memory_store_t *s, const char *rule_id, const char *key,
                           rk_algorithm_t alg, uint64_t *lo, uint64_t *hi) {
    sip_t h;
    unsigned char alg_byte = (unsigned char)alg;
    sip_init(&h, s->sip_k0, s->sip_k1);
    rule_id = rule_id ? rule_id : "";
    key = key ? key : "";
    size_t id_len = strlen(rule_id) + 1, key_len = strlen(key) + 1;
    /* One pass over the three parts laid end to end: sip_update reads whole
     * words then, where three calls would feed most bytes one at a time. */
    char joined[288]; /* a rule id (64 bytes at most), a store key, their NULs, the algorithm */
    if (id_len + key_len + 1 <= sizeof joined) {
        memcpy(joined, rule_id, id_len);
        memcpy(joined + id_len, key, key_len);
        joined[id_len + key_len] = (char)alg_byte;
        sip_update(&h, joined, id_len + key_len + 1);
    } else {
        sip_update(&h, rule_id, id_len);
        sip_update(&h, key, key_len);
        sip_update(&h, &alg_byte, 1);
    }
    sip_final128(&h, lo, hi);
}

static inline shard_t *shard_of(memory_store_t *s, uint64_t id_hi) {
    return &s->shards[id_hi >> (64 - SHARD_BITS)];
}

/* ==== entries ============================================================ */

static inline int64_t entry_expires(const entry_t *e) {
    return (int64_t)(e->meta & META_EXPIRES_MASK);
}

static inline rk_algorithm_t entry_algorithm(const entry_t *e) {
    return (rk_algorithm_t)((e->meta >> META_EXPIRES_BITS) - 1);
}

static inline uint64_t make_meta(rk_algorithm_t alg, int64_t expires_ms) {
    uint64_t exp = expires_ms < 1 ? 1 : (uint64_t)expires_ms;
    if (exp > META_EXPIRES_MASK)
        exp = META_EXPIRES_MASK;
    return ((uint64_t)(alg + 1) << META_EXPIRES_BITS) | exp;
}

/* ==== tables: Robin Hood linear probing ================================== */

/* The home slot of an identity: id_lo scaled to [0, cap) (no modulo). */
static inline size_t home_slot(uint64_t id_lo, size_t cap) {
    return (size_t)(((unsigned __int128)id_lo * cap) >> 64);
}

/* How far slot i is from the home of the entry it holds. */
static inline size_t probe_distance(const entry_t *e, size_t i, size_t cap) {
    size_t home = home_slot(e->id_lo, cap);
    return i >= home ? i - home : i + cap - home;
}

static size_t table_bytes(size_t cap, size_t page) {
    return (cap * sizeof(entry_t) + page - 1) / page * page;
}

/* Maps a zeroed table of at least min_slots slots; its capacity (every slot
 * the pages hold) goes to *cap. NULL when the system refuses. */
static entry_t *table_map(size_t min_slots, size_t page, size_t *cap) {
    size_t bytes = table_bytes(min_slots, page);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *cap = bytes / sizeof(entry_t);
    return p;
}

static void table_unmap(entry_t *slots, size_t cap, size_t page) {
    if (slots)
        munmap(slots, table_bytes(cap, page));
}

/* The live entry named (lo, hi), or NULL. */
static entry_t *table_find(const shard_t *sh, uint64_t lo, uint64_t hi) {
    if (sh->len == 0)
        return NULL;
    size_t cap = sh->cap;
    size_t i = home_slot(lo, cap);
    for (size_t dist = 0;; dist++) {
        entry_t *e = &sh->slots[i];
        if (e->meta == 0)
            return NULL;
        if (e->id_lo == lo && e->id_hi == hi)
            return e;
        if (probe_distance(e, i, cap) < dist)
            return NULL; /* it would have been placed here */
        if (++i == cap)
            i = 0;
    }
}

/* Places an entry known to be absent into a table with a free slot. */
static void table_place(entry_t *slots, size_t cap, entry_t carry) {
    size_t i = home_slot(carry.id_lo, cap);
    for (size_t dist = 0;; dist++) {
        entry_t *e = &slots[i];
        if (e->meta == 0) {
            *e = carry;
            return;
        }
        size_t d = probe_distance(e, i, cap);
        if (d < dist) { /* take the slot from the richer entry */
            entry_t t = *e;
            *e = carry;
            carry = t;
            dist = d;
        }
        if (++i == cap)
            i = 0;
    }
}

/* Removes the entry in slot i (its state already freed), shifting the
 * entries that follow back towards their homes. */
static void table_remove_at(shard_t *sh, size_t i) {
    size_t cap = sh->cap;
    for (;;) {
        size_t j = i + 1 == cap ? 0 : i + 1;
        entry_t *next = &sh->slots[j];
        if (next->meta == 0 || probe_distance(next, j, cap) == 0)
            break;
        sh->slots[i] = *next;
        i = j;
    }
    memset(&sh->slots[i], 0, sizeof sh->slots[i]);
    sh->len--;
}

/* Moves the shard's entries into a new table of at least min_slots slots. */
static rk_status_t table_resize(shard_t *sh, size_t min_slots, size_t page) {
    size_t cap = 0;
    entry_t *slots = table_map(min_slots, page, &cap);
    if (!slots)
        return RK_ERR;
    for (size_t i = 0; i < sh->cap; i++)
        if (sh->slots[i].meta != 0)
            table_place(slots, cap, sh->slots[i]);
    table_unmap(sh->slots, sh->cap, page);
    sh->slots = slots;
    sh->cap = cap;
    sh->cursor = 0;
    return RK_OK;
}

/* Makes room for one more entry within the load limit, growing by a third. */
static rk_status_t shard_make_capacity(shard_t *sh, size_t page) {
    size_t need = sh->len + 1;
    if (sh->slots && need * LOAD_MAX_DEN <= sh->cap * LOAD_MAX_NUM)
        return RK_OK;
    size_t want = sh->cap + sh->cap / 3 + 1;
    size_t floor_slots = need * LOAD_MAX_DEN / LOAD_MAX_NUM + 1;
    if (table_resize(sh, want > floor_slots ? want : floor_slots, page) == RK_OK)
        return RK_OK;
    return sh->slots && need < sh->cap ? RK_OK : RK_ERR; /* fuller, but correct */
}

/* Gives back most of a table that is less than an eighth full. */
static void shard_maybe_shrink(shard_t *sh, size_t page) {
    size_t one_page = page / sizeof(entry_t);
    if (!sh->slots || sh->cap <= one_page || sh->len * 8 >= sh->cap)
        return;
    table_resize(sh, sh->len * 2 + 1, page); /* on failure the old one stays */
}

/* ==== expiry and eviction ================================================ */

/*
 * Examines up to budget slots from the shard's cursor and frees the expired
 * entries among them, stopping after the first when stop_at_first. Answers
 * how many it freed; the caller settles the store's count.
 */
static size_t shard_sweep(shard_t *sh, int64_t now_ms, size_t budget, bool stop_at_first) {
    if (!sh->slots || sh->len == 0)
        return 0;
    size_t cap = sh->cap, freed = 0;
    size_t i = sh->cursor < cap ? sh->cursor : 0;
    while (budget-- > 0 && sh->len > 0) {
        entry_t *e = &sh->slots[i];
        if (e->meta != 0 && entry_expires(e) <= now_ms) {
            rk_state_free(entry_algorithm(e), &e->state);
            table_remove_at(sh, i); /* a later entry may shift into i: look again */
            freed++;
            if (stop_at_first)
                break;
        } else if (++i == cap) {
            i = 0;
        }
    }
    sh->cursor = i;
    return freed;
}

static uint64_t xorshift64(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * Frees the entry closest to expiry among EVICT_SAMPLE live entries read
 * from a random slot on (the shard must hold one), and counts an eviction
 * if it had not expired.
 */
static void shard_evict_sampled(memory_store_t *s, shard_t *sh, int64_t now_ms) {
    size_t cap = sh->cap;
    size_t i = (size_t)(xorshift64(&sh->rng) % cap);
    size_t victim = SIZE_MAX, seen = 0;
    for (size_t probes = 0; probes < cap && seen < EVICT_SAMPLE; probes++) {
        const entry_t *e = &sh->slots[i];
        if (e->meta != 0) {
            if (victim == SIZE_MAX || entry_expires(e) < entry_expires(&sh->slots[victim]))
                victim = i;
            seen++;
        }
        if (++i == cap)
            i = 0;
    }
    entry_t *v = &sh->slots[victim];
    if (entry_expires(v) > now_ms)
        atomic_fetch_add_explicit(&s->evictions, 1, memory_order_relaxed);
    rk_state_free(entry_algorithm(v), &v->state);
    table_remove_at(sh, victim);
}

/* Takes one place in the store's count if the bound allows. */
static bool reserve_place(memory_store_t *s) {
    size_t c = atomic_load_explicit(&s->tally.count, memory_order_relaxed);
    while (c < s->max_keys)
        if (atomic_compare_exchange_weak_explicit(&s->tally.count, &c, c + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/*
 * The store is full: frees one entry and hands its place in the count to
 * the caller (who holds sh). An expired entry first, looked for in this
 * shard and in a few others that are free right now (trylock); else the
 * sampled entry closest to expiry, of this shard or, when it is empty, of
 * the first other shard that is free and not empty. False if nothing could
 * be freed without waiting.
 */
static bool take_place(memory_store_t *s, shard_t *sh, int64_t now_ms) {
    if (shard_sweep(sh, now_ms, FULL_SCAN_SLOTS, true) > 0)
        return true;
    size_t self = (size_t)(sh - s->shards);
    size_t start = (size_t)xorshift64(&sh->rng);
    for (size_t k = 0; k < FULL_SCAN_SHARDS; k++) {
        shard_t *other = &s->shards[(start + k) % SHARD_COUNT];
        if (other == sh || pthread_mutex_trylock(&other->lock) != 0)
            continue;
        size_t freed = shard_sweep(other, now_ms, FULL_SCAN_SLOTS, true);
        pthread_mutex_unlock(&other->lock);
        if (freed > 0)
            return true;
    }
    if (sh->len > 0) {
        shard_evict_sampled(s, sh, now_ms);
        return true;
    }
    for (size_t k = 1; k < SHARD_COUNT; k++) {
        shard_t *other = &s->shards[(self + k) % SHARD_COUNT];
        if (pthread_mutex_trylock(&other->lock) != 0)
            continue;
        bool freed = other->len > 0;
        if (freed)
            shard_evict_sampled(s, other, now_ms);
        pthread_mutex_unlock(&other->lock);
        if (freed)
            return true;
    }
    return false;
}

/*
 * Keeps a new entry (its state owned by the table from then on), in one of
 * the *in_hand places the caller's sweep freed when it has one. *kept is
 * false when the bound could not be kept without waiting: the caller still
 * owns the state. RK_ERR when no memory could be mapped.
 */
static rk_status_t shard_insert(memory_store_t *s, shard_t *sh, const entry_t *e, int64_t now_ms,
                                size_t *in_hand, bool *kept) {
    *kept = false;
    if (*in_hand > 0)
        (*in_hand)--;
    else if (!reserve_place(s) && !take_place(s, sh, now_ms))
        return RK_OK;
    if (shard_make_capacity(sh, s->page) != RK_OK) {
        (*in_hand)++; /* the caller gives the place back */
        return RK_ERR;
    }
    table_place(sh->slots, sh->cap, *e);
    sh->len++;
    *kept = true;
    return RK_OK;
}

/* Removes a live entry of sh (found by table_find), freeing its state. */
static void shard_delete(memory_store_t *s, shard_t *sh, entry_t *e) {
    rk_state_free(entry_algorithm(e), &e->state);
    table_remove_at(sh, (size_t)(e - sh->slots));
    atomic_fetch_sub_explicit(&s->tally.count, 1, memory_order_relaxed);
}

/* ==== decisions ========================================================== */

/*
 * The time of a request in ms: its own, or the store's clock for -1. The
 * store's clock is the wall clock made monotonic, so that a step back of
 * the system clock cannot make an entry expire early.
 */
static int64_t request_now(memory_store_t *s, int64_t now_ms) {
    if (now_ms < 0) {
        int64_t last = atomic_load_explicit(&s->clock_ms, memory_order_relaxed);
        now_ms = rk_now_ms();
        if (now_ms > last)
            atomic_compare_exchange_strong_explicit(&s->clock_ms, &last, now_ms,
                                                    memory_order_relaxed, memory_order_relaxed);
        else
            now_ms = last;
    }
    return now_ms > RK_NOW_MS_MAX ? RK_NOW_MS_MAX : now_ms;
}

/*
 * The lease a concurrency request acquires: the one it names, or an
 * anonymous one (expiring on its own) drawn into buf.
 */
static const char *lease_of(memory_store_t *s, const rk_store_req_t *r,
                            char buf[RK_LEASE_ID_LEN + 1]) {
    if (r->lease_id || r->limit.algorithm != RK_ALG_CONCURRENCY || r->cost <= 0)
        return r->lease_id;
    uint64_t n = atomic_fetch_add(&s->tally.anonymous_leases, 1);
    snprintf(buf, RK_LEASE_ID_LEN + 1, "%016" PRIx64 "%016" PRIx64, UINT64_C(0xa11011ed00000000),
             n);
    return buf;
}

/*
 * Decides a request whose key has no live entry, on a fresh state; keeps
 * the state when the request changed it (never for a peek).
 */
static rk_status_t decide_fresh(memory_store_t *s, shard_t *sh, const rk_store_req_t *r,
                                uint64_t lo, uint64_t hi, int64_t now_ms, int64_t cost,
                                const char *lease_id, size_t *in_hand, rk_decision_t *out) {
    rk_algorithm_t alg = r->limit.algorithm;
    entry_t e = {.id_lo = lo, .id_hi = hi};
    rk_state_init(alg, &e.state);
    rk_status_t rc = rk_state_decide(&r->limit, &e.state, now_ms, cost, lease_id, out);
    int64_t ttl = rc == RK_OK && cost > 0 ? rk_state_ttl_ms(&r->limit, &e.state, now_ms) : 0;
    if (ttl > 0) {
        bool kept = false;
        e.meta = make_meta(alg, now_ms + ttl);
        rc = shard_insert(s, sh, &e, now_ms, in_hand, &kept);
        if (kept)
            return RK_OK;
    }
    rk_state_free(alg, &e.state);
    return rc;
}

/*
 * Sweeps SWEEP_SLOTS slots of sh (its lock held); entries may move. Answers
 * how many it freed: their places stay taken in the store's count until the
 * caller gives them back, so that a decision inserting after its sweep
 * reuses one instead of touching the shared count twice.
 */
static size_t shard_sweep_some(memory_store_t *s, shard_t *sh, int64_t now_ms) {
    size_t swept = shard_sweep(sh, now_ms, SWEEP_SLOTS, false);
    if (swept > 0)
        shard_maybe_shrink(sh, s->page);
    return swept;
}

/*
 * A refund (store.h): gives back on the live entry what the request r names
 * consumed; an entry that ends up the same as a fresh one goes. Its expiry
 * stays: the state only needs less time than before. No sweep, no
 * insertion, no allocation.
 */
static void refund_one(memory_store_t *s, const rk_store_req_t *r, rk_decision_t *out) {
    rk_algorithm_t alg = r->limit.algorithm;
    int64_t at_ms = request_now(s, r->now_ms);
    memset(out, 0, sizeof *out);
    out->allowed = true;
    out->limit = r->limit.limit;
    out->at_ms = at_ms;
    if ((int)alg < 0 || alg >= RK_ALG_COUNT || r->cost <= 0)
        return;
    uint64_t lo, hi;
    entry_identity(s, r->rule_id, r->key, alg, &lo, &hi);
    shard_t *sh = shard_of(s, hi);
    pthread_mutex_lock(&sh->lock);
    entry_t *e = table_find(sh, lo, hi);
    if (e) {
        rk_state_refund(&r->limit, &e->state, at_ms, r->cost, r->lease_id);
        if (rk_state_ttl_ms(&r->limit, &e->state, at_ms) <= 0)
            shard_delete(s, sh, e);
    }
    pthread_mutex_unlock(&sh->lock);
}

/* Decides one request: look up, sweep when due (see Expiry), decide. */
static rk_status_t decide_one(memory_store_t *s, const rk_store_req_t *r, rk_decision_t *out) {
    if (RK_UNLIKELY(r->refund)) {
        refund_one(s, r, out);
        return RK_OK;
    }
    rk_algorithm_t alg = r->limit.algorithm;
    int64_t now_ms = request_now(s, r->now_ms);
    int64_t cost = r->cost > 0 ? r->cost : 0;
    if (RK_UNLIKELY((int)alg < 0 || alg >= RK_ALG_COUNT)) {
        rk_cell_t scratch = {0, 0, 0};
        rk_cell_decide(&r->limit, &scratch, now_ms, cost, out); /* denies */
        return RK_OK;
    }
    char anonymous[RK_LEASE_ID_LEN + 1];
    const char *lease_id = lease_of(s, r, anonymous);
    uint64_t lo, hi;
    entry_identity(s, r->rule_id, r->key, alg, &lo, &hi);
    shard_t *sh = shard_of(s, hi);
    rk_status_t rc = RK_OK;

    size_t in_hand = 0; /* places freed by sweeps, still counted */
    pthread_mutex_lock(&sh->lock);
    bool swept = (++sh->ticks & (SWEEP_EVERY - 1)) == 0;
    if (swept)
        in_hand += shard_sweep_some(s, sh, now_ms);
    entry_t *e = table_find(sh, lo, hi);
    if (!e && !swept)
        in_hand += shard_sweep_some(s, sh, now_ms); /* no entry held: moving them is safe */
    bool cleared = false;
    if (e && entry_expires(e) <= now_ms && rk_state_ttl_ms(&r->limit, &e->state, now_ms) <= 0) {
        if (cost == 0) {
            shard_delete(s, sh, e); /* a peek keeps nothing */
            e = NULL;
        } else {
            rk_state_free(alg, &e->state); /* back to "never seen" */
            cleared = true;
        }
    }
    if (e) {
        rc = rk_state_decide(&r->limit, &e->state, now_ms, cost, lease_id, out);
        int64_t ttl = rk_state_ttl_ms(&r->limit, &e->state, now_ms);
        /* Never earlier than before: a request from a clock that runs
         * behind gets a ttl counted from the state's own later time. */
        if (ttl > 0 && (cleared || now_ms + ttl > entry_expires(e)))
            e->meta = make_meta(alg, now_ms + ttl);
        else if (ttl <= 0)
            shard_delete(s, sh, e);
    } else {
        rc = decide_fresh(s, sh, r, lo, hi, now_ms, cost, lease_id, &in_hand, out);
    }
    pthread_mutex_unlock(&sh->lock);
    if (in_hand > 0)
        atomic_fetch_sub_explicit(&s->tally.count, in_hand, memory_order_relaxed);
    return rc;
}

/* ==== the store's operations ============================================= */

static rk_status_t memory_decide(rk_store_t *store, const rk_store_req_t *reqs, size_t n,
                                 rk_decision_t *out) {
    memory_store_t *s = (memory_store_t *)store;
    for (size_t i = 0; i < n; i++)
        if (decide_one(s, &reqs[i], &out[i]) != RK_OK)
            return RK_ERR;
    return RK_OK;
}

/* Ends lease_id of the (rule, key) of req; the entry goes with its last lease. */
static rk_status_t memory_release(rk_store_t *store, const rk_store_req_t *req,
                                  const char *lease_id, bool *released) {
    memory_store_t *s = (memory_store_t *)store;
    int64_t now_ms = request_now(s, req->now_ms);
    uint64_t lo, hi;
    *released = false;
    if (!lease_id)
        return RK_OK;
    entry_identity(s, req->rule_id, req->key, RK_ALG_CONCURRENCY, &lo, &hi);
    shard_t *sh = shard_of(s, hi);
    pthread_mutex_lock(&sh->lock);
    entry_t *e = table_find(sh, lo, hi);
    if (e && entry_expires(e) > now_ms) {
        int64_t ttl = 0;
        *released = rk_state_release(&e->state, now_ms, lease_id, req->cost, &ttl);
        if (ttl > 0)
            e->meta = make_meta(RK_ALG_CONCURRENCY, now_ms + ttl);
        else
            shard_delete(s, sh, e);
    } else if (e) {
        shard_delete(s, sh, e);
    }
    pthread_mutex_unlock(&sh->lock);
    return RK_OK;
}

static rk_status_t memory_reset(rk_store_t *store, const char *rule_id, const char *key,
                                rk_algorithm_t alg) {
    memory_store_t *s = (memory_store_t *)store;
    uint64_t lo, hi;
    entry_identity(s, rule_id, key, alg, &lo, &hi);
    shard_t *sh = shard_of(s, hi);
    pthread_mutex_lock(&sh->lock);
    entry_t *e = table_find(sh, lo, hi);
    if (e)
        shard_delete(s, sh, e);
    pthread_mutex_unlock(&sh->lock);
    return RK_OK;
}

static bool memory_healthy(rk_store_t *store) {
    (void)store;
    return true;
}

/* Entries held; an expired one counts until the sweep or a lookup frees it. */
static int64_t memory_key_count(rk_store_t *store) {
    memory_store_t *s = (memory_store_t *)store;
    return (int64_t)atomic_load_explicit(&s->tally.count, memory_order_relaxed);
}

static void memory_destroy(rk_store_t *store) {
    memory_store_t *s = (memory_store_t *)store;
    if (!s)
        return;
    for (size_t k = 0; k < SHARD_COUNT; k++) {
        shard_t *sh = &s->shards[k];
        for (size_t i = 0; sh->slots && i < sh->cap; i++)
            if (sh->slots[i].meta != 0)
                rk_state_free(entry_algorithm(&sh->slots[i]), &sh->slots[i].state);
        table_unmap(sh->slots, sh->cap, s->page);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s);
}

static const rk_store_ops_t memory_ops = {
    .name = "memory",
    .decide = memory_decide,
    .release = memory_release,
    .reset = memory_reset,
    .healthy = memory_healthy,
    .key_count = memory_key_count,
    .destroy = memory_destroy,
};

/*
 * A new, empty store of at most max_keys keys (0 counts as 1). The caller
 * frees it with ops->destroy. NULL on OOM.
 */
rk_store_t *rk_memory_store_new(size_t max_keys) {
    size_t size = (sizeof(memory_store_t) + 63) / 64 * 64;
    memory_store_t *s = aligned_alloc(64, size);
    if (!s)
        return NULL;
    memset(s, 0, size);
    s->base.ops = &memory_ops;
    s->max_keys = max_keys > 0 ? max_keys : 1;
    long page = sysconf(_SC_PAGESIZE);
    s->page = page > 0 ? (size_t)page : 4096;
    uint64_t key[2];
    if (rk_random_bytes(key, sizeof key) != RK_OK) {
        key[0] = (uint64_t)rk_mono_ms() * UINT64_C(0x9e3779b97f4a7c15);
        key[1] = (uint64_t)(uintptr_t)s ^ (uint64_t)rk_now_ms();
    }
    s->sip_k0 = key[0];
    s->sip_k1 = key[1];
    atomic_init(&s->tally.count, 0);
    atomic_init(&s->evictions, 0);
    atomic_init(&s->tally.anonymous_leases, 0);
    atomic_init(&s->clock_ms, 0);

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP); /* spin briefly, then sleep */
#endif
    for (size_t k = 0; k < SHARD_COUNT; k++) {
        pthread_mutex_init(&s->shards[k].lock, &attr);
        s->shards[k].rng = (key[0] ^ (k + 1) * UINT64_C(0x9e3779b97f4a7c15)) | 1;
    }
    pthread_mutexattr_destroy(&attr);
    return &s->base;
}

/* Entries removed before their expiry to keep the bound; -1 for another store. */
int64_t rk_memory_store_evictions(rk_store_t *store) {
    if (!store || store->ops != &memory_ops)
        return -1;
    memory_store_t *s = (memory_store_t *)store;
    return (int64_t)atomic_load_explicit(&s->evictions, memory_order_relaxed);
}
