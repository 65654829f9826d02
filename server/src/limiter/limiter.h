/*
 * limiter.h — the rate-limiting algorithms, as pure functions of
 * (state, now_ms, limit, cost) -> decision.
 *
 * All arithmetic is integer and fixed-point (time in ms, fractional
 * tokens/levels in milli-units), so that the Lua scripts in lua/ can
 * reproduce every decision exactly. Values accepted by the API are bounded
 * by the RK_*_MAX constants below so no intermediate value can overflow,
 * neither in C (int64) nor in Lua (doubles, exact below 2^53).
 *
 * A clock that runs backwards is clamped: time never goes before the last
 * time recorded in the state. A denied request consumes nothing.
 */
#ifndef RK_LIMITER_H
#define RK_LIMITER_H

#include "../common.h"

typedef enum {
    RK_ALG_FIXED_WINDOW = 0,
    RK_ALG_SLIDING_WINDOW,
    RK_ALG_SLIDING_LOG,
    RK_ALG_TOKEN_BUCKET,
    RK_ALG_GCRA,
    RK_ALG_LEAKY_BUCKET,
    RK_ALG_CONCURRENCY,
    RK_ALG_COUNT
} rk_algorithm_t;

/*
 * Bounds of what the API accepts (validated in rules/, relied upon here).
 *
 * Why these numbers: token_bucket, gcra and leaky_bucket count tokens in
 * "token-milliseconds" (1 token = window_ms units, refilled at `limit` units
 * per ms), which makes the refill exact with no rounding at all (window 1000,
 * limit 3 gives exactly 3 per second). sliding_window compares
 * prev*(window - elapsed) with (limit - curr - cost)*window. The largest
 * intermediate value is therefore max(limit, burst) * window_ms:
 * 1e7 * 604,800,000 = 6.05e15, below 2^53 = 9.007e15, so every value is
 * exact in int64 and in the doubles of Redis Lua 5.1 (with room to spare for
 * the "+ limit - 1" of a rounded-up division). A cost above the capacity is
 * refused before it is ever multiplied, so costs may be larger. now_ms is
 * clamped to [0, RK_NOW_MS_MAX] (the year 6429), which keeps now + any
 * duration below 2^53 too.
 */
#define RK_LIMIT_MAX 10000000LL               /* requests per window (1e7) */
#define RK_BURST_MAX RK_LIMIT_MAX             /* capacity of the buckets */
#define RK_WINDOW_MS_MAX (7LL * 86400 * 1000) /* one week */
#define RK_COST_MAX 1000000000LL
#define RK_SLIDING_LOG_LIMIT_MAX 100000LL /* the log keeps one entry per unit */
/* A key holds at most this many live leases (memory; a denial walks up to cost of them). */
#define RK_CONCURRENCY_LIMIT_MAX 10000LL
#define RK_NOW_MS_MAX (1LL << 47)

typedef struct {
    rk_algorithm_t algorithm;
    int64_t limit;     /* 1..RK_LIMIT_MAX */
    int64_t window_ms; /* 1..RK_WINDOW_MS_MAX */
    int64_t burst;     /* capacity (token/gcra/leaky), 1..RK_BURST_MAX; always resolved */
    bool shape;        /* leaky bucket: answer delay_ms instead of denying */
} rk_limit_t;

/*
 * A decision. Common to every algorithm:
 * - remaining: how many more cost-1 requests would pass right now;
 * - reset_ms: time until the key is back to full (0 when it is full);
 * - retry_after_ms: 0 when allowed; when denied, the exact earliest delay
 *   after which the same request would pass (if nothing else happens). A
 *   request that can never pass (cost above the limit or capacity) answers
 *   max(reset_ms, window_ms): waiting does not help, and nothing sooner
 *   would change the answer.
 * Each algorithm file's header says how it computes them.
 */
typedef struct {
    bool allowed;
    int64_t limit; /* the rule's limit, as given */
    int64_t remaining;
    int64_t reset_ms;       /* until the key is back to full */
    int64_t retry_after_ms; /* 0 when allowed */
    int64_t delay_ms;       /* leaky-bucket shaping only */
    /* The time the algorithm decided at (ms, clamped as it clamps now): what
     * a refund names (rk_cell_refund); -1 when unknown. */
    int64_t at_ms;
} rk_decision_t;

/*
 * State of one key for the algorithms whose state has a fixed size
 * (every algorithm but sliding_log and concurrency). All zero means
 * "never seen". The meaning of a, b, c is private to each algorithm.
 */
typedef struct {
    int64_t a, b, c;
} rk_cell_t;

/* Name as in the rule JSON ("token_bucket"); NULL for an invalid value. */
const char *rk_algorithm_name(rk_algorithm_t alg);

/* Parses a name; RK_ERR if unknown. */
rk_status_t rk_algorithm_parse(const char *name, rk_algorithm_t *out);

/*
 * Decides one request against a fixed-size state, updating *cell only when
 * a request with cost > 0 is allowed (exactly when the Lua script writes).
 * cost 0 peeks and a denied request consumes nothing: *cell is unchanged.
 */
void rk_cell_decide(const rk_limit_t *lim, rk_cell_t *cell, int64_t now_ms, int64_t cost,
                    rk_decision_t *out);

/*
 * Gives back what a request allowed at at_ms (its decision's at_ms) with
 * `cost` consumed, for a request that was denied in the end (by another
 * rule): fixed_window and sliding_window take cost off the count of the
 * window of at_ms, and nothing when the state has moved to another window;
 * token_bucket and gcra move tat back by cost*T, never below at_ms; the
 * leaky bucket takes cost off its level (never below 0). Exactly what the
 * Lua scripts do with op "refund".
 */
void rk_cell_refund(const rk_limit_t *lim, rk_cell_t *cell, int64_t at_ms, int64_t cost);

/*
 * How long after now_ms the state must be kept before it is equivalent to a
 * fresh one (the TTL of its Redis key, the expiry of its memory entry).
 */
int64_t rk_cell_ttl_ms(const rk_limit_t *lim, const rk_cell_t *cell, int64_t now_ms);

/* ---- sliding_log: one timestamp per admitted unit, oldest first ---- */

typedef struct {
    int64_t *ts;  /* ring buffer of cap entries, owned */
    uint32_t cap; /* allocated entries */
    uint32_t head;
    uint32_t len;
    /* ts is the caller's (a small state unpacked on its stack): never freed
     * here, and left for a new buffer when the log outgrows it */
    bool borrowed;
    /* the first and the last entries (when len > 0): a check that drops no
     * entry reads none before it appends */
    int64_t oldest_ms, newest_ms;
} rk_log_t;

/* Decides against the log; grows it as needed. RK_ERR only on OOM. */
rk_status_t rk_log_decide(const rk_limit_t *lim, rk_log_t *log, int64_t now_ms, int64_t cost,
                          rk_decision_t *out);
/* Refund (see rk_cell_refund): removes up to cost entries admitted at at_ms. */
void rk_log_refund(rk_log_t *log, int64_t at_ms, int64_t cost);
int64_t rk_log_ttl_ms(const rk_limit_t *lim, const rk_log_t *log, int64_t now_ms);
void rk_log_free(rk_log_t *log);

/* ---- concurrency: leases with expiry ---- */

#define RK_LEASE_ID_LEN 32   /* hex characters, as ratekitd draws lease ids */
#define RK_LEASE_ID_BYTES 16 /* what a lease keeps of its id */
#define RK_LEASE_ID_HEX UINT8_C(0xff)

/*
 * A lease. Its id is kept in RK_LEASE_ID_BYTES: an id of RK_LEASE_ID_LEN
 * lowercase hex digits (every id ratekitd draws) as the bytes they spell
 * (id_form RK_LEASE_ID_HEX), any other id of 1..RK_LEASE_ID_BYTES
 * characters as its text, padded with NULs (id_form: its length). 32 bytes
 * rather than 48 with the text of a 32-character id.
 */
typedef struct {
    int64_t expires_ms;
    int32_t units; /* the cost it was acquired with: at most the limit */
    uint8_t id_form;
    uint8_t id[RK_LEASE_ID_BYTES];
} rk_lease_t;

/* Keeps lease_id in l's id fields; false for an id a lease cannot keep (see rk_lease_t). */
bool rk_lease_id_set(rk_lease_t *l, const char *lease_id);

typedef struct {
    rk_lease_t *leases; /* owned; the set is leases[head, len), by expiry */
    uint32_t head, len, cap;
    bool borrowed; /* leases is the caller's, as rk_log_t's ts */
    int64_t units; /* the units of leases[head, len), expired or not */
    /* the expiries of leases[head] and leases[len - 1] (when len > head):
     * an acquire that drops no lease reads none */
    int64_t first_expiry_ms, last_expiry_ms;
} rk_lease_set_t;

/*
 * Acquires one lease named lease_id (an id rk_lease_t keeps) holding
 * `cost` units, expiring window_ms after now; allowed while live units +
 * cost <= limit. Lease ids are unique (ratekitd draws them at random): an id
 * already in the set is not looked for. cost 0 peeks (lease_id may then be
 * NULL). Expired leases are dropped when a lease is acquired. RK_ERR on OOM,
 * or for a missing id or one a lease cannot keep with cost > 0. O(1)
 * amortized, plus the expired leases it drops (whose units it subtracts),
 * unless the new lease expires before others (a window shortened since they
 * were acquired): then those move up one; see concurrency.c.
 */
rk_status_t rk_lease_acquire(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms,
                             int64_t cost, const char *lease_id, rk_decision_t *out);
/*
 * Ends the lease lease_id acquired with `units` (0: whatever its units, as
 * the Lua script, which then has to search its set for the id); true if it
 * was live.
 */
bool rk_lease_release(rk_lease_set_t *set, int64_t now_ms, const char *lease_id, int64_t units);
/* Current decision without acquiring (as a cost-0 check). */
void rk_lease_peek(const rk_limit_t *lim, rk_lease_set_t *set, int64_t now_ms, rk_decision_t *out);
int64_t rk_lease_ttl_ms(const rk_lease_set_t *set, int64_t now_ms);
void rk_lease_set_free(rk_lease_set_t *set);

#endif
