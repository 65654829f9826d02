/*
 * store.h — where the state of every (rule, key) lives.
 *
 * A store is a function table; the check path calls store->ops->decide()
 * and never knows whether the embedded memory store or Redis is behind it.
 * Every operation is thread-safe. decide() makes one round trip at most,
 * however many requests it is given.
 */
#ifndef RK_STORE_H
#define RK_STORE_H

#include "../limiter/limiter.h"

/* Client keys longer than this, or not printable, are replaced by a hash. */
#define RK_STORE_KEY_MAX 200

typedef struct {
    const char *rule_id; /* [a-z0-9][a-z0-9_-]{0,63} */
    const char *key;     /* client key, already normalised (rk_store_normalize_key) */
    rk_limit_t limit;
    int64_t cost;         /* 0 peeks: nothing is consumed or written */
    int64_t now_ms;       /* -1: the store's own clock (Redis TIME) */
    const char *lease_id; /* concurrency only: the lease to create (RK_LEASE_ID_LEN hex) */
    /*
     * A refund: gives back the cost that an allowed decision consumed (the
     * request was denied in the end by another rule), now_ms being that
     * decision's at_ms (rk_cell_refund: never another window); for
     * concurrency, ends its lease lease_id. Answered allowed, nothing else
     * in out[] meant.
     */
    bool refund;
    /* A refund may follow (one of several rules of a request): out[].at_ms is
     * wanted where a refund needs it (rk_store_refund_needs_time). */
    bool refundable;
} rk_store_req_t;

/*
 * Whether a refund must name the time its decision was made at (at_ms):
 * the windows (which window it was counted in) and the log (which entries
 * it added). A bucket's or GCRA's time, a leaky level and a lease are given
 * back exactly on the store's clock at the refund (now_ms -1), so that Redis
 * need not answer at_ms for them (an element more per reply).
 */
static inline bool rk_store_refund_needs_time(rk_algorithm_t alg) {
    return alg == RK_ALG_FIXED_WINDOW || alg == RK_ALG_SLIDING_WINDOW || alg == RK_ALG_SLIDING_LOG;
}

typedef struct rk_store rk_store_t;

/*
 * out[i].limit of a request the store did not decide. A caller that sets
 * every out[i].limit to it before decide() or decide_async() can tell, on
 * RK_ERR, the requests that failed (still RK_STORE_UNDECIDED) from those the
 * store did decide (and count) before or beside the failure: a store never
 * leaves anything else in out[i] of a failed request.
 */
#define RK_STORE_UNDECIDED (-1)

typedef struct {
    const char *name; /* "memory", "redis", "redis-cluster" */
    /* Decides n requests in order; RK_ERR when the store failed for some or all
     * of them (see RK_STORE_UNDECIDED for which). */
    rk_status_t (*decide)(rk_store_t *s, const rk_store_req_t *reqs, size_t n, rk_decision_t *out);
    /*
     * Optional (NULL: the store only has decide()). Decides n requests as
     * decide() would; done(ctx, status) is called exactly once, when out[]
     * is filled (RK_OK) or the store failed for some or all of them (RK_ERR,
     * as for decide()). On a
     * data-plane event loop (../http/loop.h) it returns at once and done()
     * comes later on that loop's thread, the requests having gone out in
     * one round trip with the rest of the loop's round; on any other
     * thread done() may be called before it returns. reqs, the strings
     * they point at and out must live until done(). RK_ERR when it cannot
     * start them (done is then never called).
     */
    rk_status_t (*decide_async)(rk_store_t *s, const rk_store_req_t *reqs, size_t n,
                                rk_decision_t *out, void (*done)(void *ctx, rk_status_t st),
                                void *ctx);
    /* Ends a concurrency lease; *released tells whether it was live (false,
     * the store untouched, when req's rule is not a concurrency one). */
    rk_status_t (*release)(rk_store_t *s, const rk_store_req_t *req, const char *lease_id,
                           bool *released);
    /* Optional: release() as decide_async() is to decide(); req, lease_id and
     * released must live until done(). */
    rk_status_t (*release_async)(rk_store_t *s, const rk_store_req_t *req, const char *lease_id,
                                 bool *released, void (*done)(void *ctx, rk_status_t st),
                                 void *ctx);
    /* Forgets the state of one (rule, key, algorithm). */
    rk_status_t (*reset)(rk_store_t *s, const char *rule_id, const char *key, rk_algorithm_t alg);
    /* Whether the store answers (for /readyz and metrics): its last operations
     * succeeded; on a Redis Cluster, every master serving slots does. */
    bool (*healthy)(rk_store_t *s);
    /* Number of keys held, or -1 when unknown. */
    int64_t (*key_count)(rk_store_t *s);
    void (*destroy)(rk_store_t *s);
} rk_store_ops_t;

struct rk_store {
    const rk_store_ops_t *ops;
};

/*
 * Writes the store form of a client key into out (RK_STORE_KEY_MAX + 1
 * bytes): the key itself when it is 1..RK_STORE_KEY_MAX bytes of printable
 * ASCII without spaces or braces and does not start with "h:", else "h:"
 * and the hex of the first 128 bits of its SHA-256 (see keys.c).
 */
void rk_store_normalize_key(const char *key, size_t len, char out[RK_STORE_KEY_MAX + 1]);
/*
 * Lower-cases, in place, the header names of a client key's header: parts
 * ("header:X-Tenant:acme" -> "header:x-tenant:acme"; each part of a tuple),
 * as checks write them: a key typed by hand (a list entry, an override)
 * then names the client the checks count.
 */
void rk_key_fold_header_names(char *key);

/* The embedded store: at most max_keys keys (see memory.c for eviction). */
rk_store_t *rk_memory_store_new(size_t max_keys);

/* Keys the memory store evicted before their expiry to stay within
 * max_keys (for metrics); -1 when s is not a memory store. */
int64_t rk_memory_store_evictions(rk_store_t *s);

/* ---- Redis (redis.c, redis_url.c) ---- */

/* A parsed redis://[user:pass@]host:port[/db] (user and password decoded). */
typedef struct {
    char user[128];     /* ACL user; empty: AUTH with the password alone */
    char password[256]; /* empty: no AUTH */
    char host[256];     /* name, IPv4, or IPv6 without brackets */
    int port;           /* 1..65535; 6379 when the URL has none */
    int db;             /* SELECTed when not 0 */
} rk_redis_url_t;

/*
 * Parses and validates a Redis URL strictly. On RK_ERR, err holds one line
 * saying what is wrong (never the password).
 */
rk_status_t rk_redis_url_parse(const char *url, rk_redis_url_t *out, char *err, size_t errlen);

typedef struct {
    const char *url;            /* redis://[user:pass@]host:port[/db] */
    int64_t connect_timeout_ms; /* 0: 500 */
    int64_t timeout_ms;         /* per command; 0: 250 */
    const char *key_prefix;     /* NULL or "": "ratekit" */
    /* Lua source per rk_algorithm_t; NULL: the scripts embedded from lua/. */
    const char *const *scripts;
} rk_redis_config_t;

/*
 * A store whose state lives in one Redis server, shared by every ratekitd
 * pointing at it. Connects lazily (one connection per calling thread).
 * NULL with err set when the configuration is invalid.
 */
rk_store_t *rk_redis_store_new(const rk_redis_config_t *cfg, char *err, size_t errlen);

/* Connects (if needed) and PINGs; on RK_ERR err says why (for start-up). The
 * outcome is the store's health (healthy()) until later calls tell otherwise. */
rk_status_t rk_redis_store_ping(rk_store_t *s, char *err, size_t errlen);

/* ---- Redis Cluster (redis_cluster.c) ---- */

struct redisReply;
struct redisContext;

typedef struct {
    const char *seeds;          /* "host:port,host:port,..."; IPv6 as "[addr]:port" */
    int64_t connect_timeout_ms; /* 0: 500 */
    int64_t timeout_ms;         /* per command; 0: 250 */
    const char *key_prefix;     /* NULL or "": "ratekit" */
    /* Lua source per rk_algorithm_t; NULL: the scripts embedded from lua/. */
    const char *const *scripts;
} rk_redis_cluster_config_t;

/*
 * A store whose state lives in a Redis Cluster: keys routed by hash slot,
 * MOVED and ASK followed, one pipeline per node and call. Connects lazily
 * (per calling thread, one connection per node). NULL with err set (one
 * line) when the seed list or another setting is invalid.
 */
rk_store_t *rk_redis_cluster_store_new(const rk_redis_cluster_config_t *cfg, char *err,
                                       size_t errlen);

/* Fetches the slot map from the seeds now; RK_ERR (err says why) when no node
 * answers or some slot is not served (for start-up). */
rk_status_t rk_redis_cluster_store_ping(rk_store_t *s, char *err, size_t errlen);

/* CRC16-XMODEM of buf, and the hash slot of a key (its {hash tag} when it has one). */
uint16_t rk_redis_cluster_crc16(const char *buf, size_t len);
unsigned rk_redis_cluster_keyslot(const char *key, size_t len);

/* One command for rk_redis_cluster_run(), sent to the master owning `key`. */
typedef struct {
    const char *key; /* the key that routes the command (usually one of argv) */
    size_t key_len;
    int argc;
    const char **argv;
    const size_t *argv_len;
} rk_redis_cluster_cmd_t;

/*
 * Runs n commands on the cluster of a store made by rk_redis_cluster_store_new,
 * each on the master owning its key, following MOVED and ASK: one pipeline per
 * node, all nodes in parallel. Thread-safe (uses the calling thread's
 * connections). replies[i] receives each reply, error replies included
 * (freeReplyObject, the caller's), or NULL for a command that got none;
 * RK_ERR when some command got none (node unreachable, timeout).
 */
rk_status_t rk_redis_cluster_run(rk_store_t *s, const rk_redis_cluster_cmd_t *cmds, size_t n,
                                 struct redisReply **replies);

/*
 * A new connection (the caller's: redisFree) to the master owning `key`,
 * with the store's connect and command timeouts set; for a subscriber or a
 * long-lived reader. NULL with err set when no node serves the key's slot or
 * it cannot be reached.
 */
struct redisContext *rk_redis_cluster_connect_for_key(rk_store_t *s, const char *key,
                                                      size_t key_len, char *err, size_t errlen);

#endif
