/*
 * redis_common.h — what the single-node Redis store (redis.c) and the Redis
 * Cluster store (redis_cluster.c) share: the key layout, the Lua scripts and
 * their SHAs, the EVALSHA argument vector, the parsing of script replies,
 * connection helpers and the breaker gate.
 *
 * Internal to server/src/store/: the rest of ratekitd sees only store.h.
 */
#ifndef RK_REDIS_COMMON_H
#define RK_REDIS_COMMON_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#include "breaker.h"
#include "store.h"

#define RK_REDIS_PREFIX_MAX 64
#define RK_REDIS_RULE_ID_MAX 64
#define RK_REDIS_KEY_BUF (RK_REDIS_PREFIX_MAX + RK_REDIS_RULE_ID_MAX + RK_STORE_KEY_MAX + 32)
#define RK_REDIS_LEASE_MAX 64 /* bytes of a lease id */
#define RK_REDIS_SHA_HEX 40
#define RK_REDIS_EVAL_ARGC 12 /* EVALSHA sha 1 key + 8 ARGV */
/* Room for one EVALSHA: each argument's "$<len>\r\n...\r\n" and its bytes. */
#define RK_REDIS_EVAL_MAX                                                                          \
    (8 + RK_REDIS_EVAL_ARGC * 26 + RK_REDIS_SHA_HEX + RK_REDIS_KEY_BUF + 5 * RK_INT_TEXT_MAX +     \
     RK_REDIS_LEASE_MAX + 16)

/* Consecutive failures that open a breaker, and its cool-downs. */
#define RK_REDIS_BREAKER_THRESHOLD 3
#define RK_REDIS_BREAKER_COOLDOWN_MS 500
#define RK_REDIS_BREAKER_COOLDOWN_MAX_MS 1000

/* What kind of request a script call is. */
typedef enum { RK_REDIS_OP_DECIDE, RK_REDIS_OP_RELEASE } rk_redis_op_t;

/*
 * The scripts: one per algorithm (script[alg]), then the batch script
 * (script[RK_REDIS_BATCH]), which runs the decisions of many requests in
 * one call: every algorithm's script as a function, called for each
 * request in turn. Built from the algorithms' scripts (redis_common.c).
 */
#define RK_REDIS_BATCH RK_ALG_COUNT
#define RK_REDIS_SCRIPTS (RK_ALG_COUNT + 1)
/* A batch call's arguments per set of script arguments: the algorithm, then its script's 8 ARGV. */
#define RK_REDIS_BATCH_ARGS 9
/* Room for a batch call's head (EVALSHA, the SHA, the number of keys), source excepted. */
#define RK_REDIS_BATCH_HEAD_MAX 96

/* Settings both stores derive from their configuration; read-only once made. */
typedef struct {
    struct timeval connect_tv, command_tv;
    char prefix[RK_REDIS_PREFIX_MAX + 1];
    size_t prefix_len;
    /* The algorithms' are borrowed (the caller's or the embedded sources);
     * the batch script is built and owned (rk_redis_common_free). */
    const char *script[RK_REDIS_SCRIPTS];
    size_t script_len[RK_REDIS_SCRIPTS];
    char sha[RK_REDIS_SCRIPTS][RK_REDIS_SHA_HEX + 1];
    int scripts; /* those loaded: RK_REDIS_SCRIPTS with the batch script, else RK_ALG_COUNT */
} rk_redis_common_t;

/*
 * Validates the key prefix (NULL or "": "ratekit") and the timeouts in ms
 * (0: the defaults, 500 to connect and 250 per command), takes the scripts
 * (NULL: those embedded from lua/), builds the batch script when asked
 * (batch), and computes their SHAs. On RK_ERR, err says why, starting with
 * `what` ("redis", "redis cluster").
 */
rk_status_t rk_redis_common_init(rk_redis_common_t *c, const char *what, const char *const *scripts,
                                 bool batch, const char *key_prefix, int64_t connect_timeout_ms,
                                 int64_t timeout_ms, char *err, size_t errlen);

/* Frees what rk_redis_common_init() made (the batch script); *c may be zeroed. */
void rk_redis_common_free(rk_redis_common_t *c);

/* Writes a message into err (errlen bytes; err may be NULL). */
void rk_redis_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describes a failed reply (NULL: the context's I/O error) into err. */
void rk_redis_describe_failure(const redisContext *ctx, const redisReply *r, const char *what,
                               char *err, size_t errlen);

/* Builds "<prefix>:{<rule>:<key>}:<alg>" into buf (RK_REDIS_KEY_BUF); its length, 0 if invalid. */
size_t rk_redis_build_key(const rk_redis_common_t *c, const char *rule_id, const char *key,
                          rk_algorithm_t alg, char *buf);

/* Whether a request can be sent at all (bounded names and lease, known algorithm). */
bool rk_redis_req_valid(const rk_store_req_t *req, const char *lease_id);
/* Whether every request of a batch can (each with its own lease id). */
bool rk_redis_reqs_valid(const rk_store_req_t *reqs, size_t n);

/*
 * Writes one EVALSHA of the request's script, in RESP, into cmd (room for
 * RK_REDIS_EVAL_MAX bytes); answers its length. lease_id is the lease a
 * release ends (RK_REDIS_OP_RELEASE only).
 */
size_t rk_redis_format_eval(const rk_redis_common_t *c, const rk_store_req_t *req, rk_redis_op_t op,
                            const char *lease_id, char *cmd);
/* The same, appended to ctx's pipeline (nothing is sent yet). */
int rk_redis_append_eval(const rk_redis_common_t *c, redisContext *ctx, const rk_store_req_t *req,
                         rk_redis_op_t op, const char *lease_id);

/*
 * The same call as EVAL of the script's source (Redis caches the script):
 * for a request that met NOSCRIPT, which it cannot meet again. Allocates;
 * not for the hot path.
 */
int rk_redis_append_eval_source(const rk_redis_common_t *c, redisContext *ctx,
                                const rk_store_req_t *req, rk_redis_op_t op, const char *lease_id);

/* The numbers of a script call's ARGV: limit, window_ms, burst, cost, now_ms (-1: Redis TIME). */
#define RK_REDIS_CALL_NUMS 5

/* A request's script arguments as values: equal values, equal bytes on the wire. */
typedef struct {
    int64_t num[RK_REDIS_CALL_NUMS];
    const char *lease, *op;
    size_t lease_len;
    rk_algorithm_t algorithm;
    bool shape;
} rk_redis_call_args_t;

/* The script arguments of a request (lease_id: the lease a release ends). */
void rk_redis_call_args(const rk_store_req_t *req, rk_redis_op_t op, const char *lease_id,
                        rk_redis_call_args_t *out);
bool rk_redis_call_args_equal(const rk_redis_call_args_t *a, const rk_redis_call_args_t *b);

/* Whether a batch call of n requests in `sets` sets names each request's set. */
static inline bool rk_redis_batch_names_sets(size_t n, size_t sets) {
    return sets > 1 && sets < n; /* one set: every request's; n sets: request i has set i */
}

/*
 * A batch call of n requests whose script arguments go as `sets` sets,
 * written in RESP in parts, in this order: the head (EVALSHA of the
 * batch script, or with source EVAL of its source: room for
 * RK_REDIS_BATCH_HEAD_MAX bytes and the source); each request's key; the
 * number of sets (rk_redis_format_batch_int); each set's arguments; and,
 * when there are more than one set and fewer than n, each request's set,
 * counted from 1 (in the keys' order; with n sets, request i has set i).
 * A part takes at most RK_REDIS_EVAL_MAX bytes. The reply is an array of
 * each request's reply (as rk_redis_parse_reply reads it), or of an error
 * for a request whose script failed. Each answers the bytes it wrote.
 */
size_t rk_redis_format_batch_head(const rk_redis_common_t *c, size_t n, size_t sets, bool source,
                                  char *cmd);
size_t rk_redis_format_batch_key(const rk_redis_common_t *c, const rk_store_req_t *req, char *cmd);
size_t rk_redis_format_batch_int(size_t v, char *cmd);
size_t rk_redis_format_batch_args(const rk_redis_call_args_t *args, char *cmd);

/* Turns a script reply into *out (a decision) or *released; false if malformed. */
bool rk_redis_parse_reply(const redisReply *r, const rk_store_req_t *req, rk_redis_op_t op,
                          rk_decision_t *out, bool *released);

/* Whether r (may be NULL) is an error whose first word is `prefix` ("NOSCRIPT", "MOVED", "ASK"). */
bool rk_redis_is_error(const redisReply *r, const char *prefix);

/* Appends AUTH [user] password (user may be ""); REDIS_ERR only when hiredis is out of memory. */
int rk_redis_append_auth(redisContext *ctx, const char *user, const char *password);

/*
 * AUTH [user] password on ctx, waiting for the reply; arena: ctx reads through
 * an arena (rk_redis_connect_store). On RK_ERR err says why (never the password).
 */
rk_status_t rk_redis_auth(redisContext *ctx, bool arena, const char *user, const char *password,
                          char *err, size_t errlen);

/* Appends SCRIPT LOAD of every script (c->scripts); REDIS_ERR when hiredis is out of memory. */
int rk_redis_append_script_loads(const rk_redis_common_t *c, redisContext *ctx);

/* Reads the replies of rk_redis_append_script_loads() on a store connection
 * (rk_redis_connect_store); checks each SHA. */
rk_status_t rk_redis_read_script_loads(const rk_redis_common_t *c, redisContext *ctx, char *err,
                                       size_t errlen);

/*
 * Connects to host:port with the connect timeout and sets the command
 * timeout and keep-alive on the socket. NULL with err set on failure.
 * The context is the caller's (redisFree).
 */
redisContext *rk_redis_connect(const rk_redis_common_t *c, const char *host, int port, char *err,
                               size_t errlen);

/*
 * rk_redis_connect() for a store's own connection: its replies are read
 * through an arena (reply_arena.h), so a check's reply costs no allocation.
 * Freed with rk_reply_context_free(), its replies with rk_reply_free().
 */
redisContext *rk_redis_connect_store(const rk_redis_common_t *c, const char *host, int port,
                                     char *err, size_t errlen);

/* Whether an I/O failure looks like a connection the server closed while idle. */
bool rk_redis_looks_stale(const redisContext *ctx, int io_errno);

/* Ignores SIGPIPE unless someone installed a handler (hiredis uses write()). */
void rk_redis_ignore_sigpipe(void);

/* ---- the breaker gate: a breaker, the last outcome, and logs on changes ---- */

typedef struct {
    rk_breaker_t breaker;
    atomic_bool last_ok;
} rk_redis_gate_t;

void rk_redis_gate_init(rk_redis_gate_t *g);

/* Asks the breaker whether to call; false: fail at once. */
bool rk_redis_gate_enter(rk_redis_gate_t *g, rk_breaker_ticket_t *ticket);

/* Reports an outcome; logs (naming `who`, e.g. "redis at h:p") when the breaker changes state. */
void rk_redis_gate_leave(rk_redis_gate_t *g, rk_breaker_ticket_t ticket, bool ok, const char *who);

/* Breaker closed and the last call succeeded. */
bool rk_redis_gate_healthy(rk_redis_gate_t *g);

/* ---- the prober: a store's health comes back without traffic ---- */

/* How often the prober looks at its store's health. */
#define RK_REDIS_PROBE_TICK_MS 100

/*
 * A thread that, while its store reports itself unhealthy, calls probe()
 * every RK_REDIS_PROBE_TICK_MS: a command through the breaker (which spaces
 * real attempts by its cool-down) on the thread's own connection. Without
 * it the breaker only probes when a check comes, and /readyz stays 503
 * after Redis is back for as long as no check comes, which is forever
 * behind a balancer that took the instance out on that 503. It never
 * touches a check's path; its probe may block its own thread for the
 * connect and command timeouts.
 */
typedef struct {
    rk_store_t *store;
    void (*probe)(rk_store_t *store);
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop */
    pthread_cond_t wake;  /* signalled on stop */
    bool stop;
} rk_redis_prober_t;

/* The probe's rule id: rule ids start with a letter or a digit, so no rule shares its keys. */
#define RK_REDIS_PROBE_RULE "_probe"

/*
 * The request a prober sends as its probe (key: a name of at most 24 bytes,
 * borrowed): one call of the fixed-window script, always allowed, that writes
 * <prefix>:{_probe:<key>}:fixed_window, a key that lives a second. Not a
 * PING: a Redis that answers PING but refuses writes (maxmemory reached: OOM)
 * fails every check that counts, and a PING would call it healthy again each
 * time.
 */
rk_store_req_t rk_redis_probe_req(const char *key);

/* Starts the prober of store; RK_ERR (err set, naming `what`) when no thread can be made. */
rk_status_t rk_redis_prober_start(rk_redis_prober_t *p, rk_store_t *store,
                                  void (*probe)(rk_store_t *store), const char *what, char *err,
                                  size_t errlen);

/* Stops and joins it (a probe under way ends first, within the store's timeouts). */
void rk_redis_prober_stop(rk_redis_prober_t *p);

#endif
