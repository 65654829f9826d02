/*
 * redis_cluster.c — the Redis Cluster store: the state of every (rule, key)
 * in a Redis Cluster, for when one Redis is not enough. Only the client side
 * is here; the cluster itself is a stock Redis Cluster.
 *
 * Routing. The slot of a key is CRC16-XMODEM of its hash tag (the first
 * non-empty {...}; ratekit keys always carry {rule:key}) modulo 16384. The
 * slot map (slot -> master) comes from CLUSTER SLOTS, asked of any known node
 * (the seeds first known); it is fetched again every REFRESH_PERIOD_MS, and
 * sooner (at most every REFRESH_GAP_MS) after a MOVED, an unreachable node or
 * an unmapped slot. A MOVED reply updates that slot at once and the command
 * is resent to the new owner; an ASK reply (a slot being migrated) resends it
 * once to the node named, preceded by ASKING, and leaves the map alone.
 *
 * Nodes. Every node ever seen gets a stable index in an append-only table
 * (at most MAX_NODES), so that the slot map is an array of 16384 small
 * integers read without a lock, and each thread keeps one hiredis context
 * per node index (lazy, with the same connect and command timeouts as the
 * single-node store, and the scripts loaded on each new connection in the
 * same round trip as its first commands: each node has its own script cache).
 * Each context reads its replies through an arena (reply_arena.h), so a
 * check's reply costs no allocation; rk_redis_cluster_run() hands out
 * copies made as hiredis makes its own, for freeReplyObject().
 *
 * Batches. decide(reqs, n) groups the requests by node and pipelines each
 * group: every group is written before any reply is read, so the nodes work
 * in parallel and a batch costs one round trip whatever the number of nodes.
 * Redirected requests (MOVED, ASK) and requests that met NOSCRIPT go out in a
 * further round; a redirection is not a failure. Any other failure of a
 * request (unreachable node, timeout, error reply, malformed reply) makes the
 * call RK_ERR with that request marked RK_STORE_UNDECIDED: the check path
 * applies its fail mode to it alone, the requests other nodes answered
 * keeping their decisions (those nodes counted them).
 *
 * Event loops. On the data plane's event loops (http/loop.h) a check is
 * queued instead, and every check of a loop's round goes out in one batch
 * when the round ends: concurrent requests share round trips, as they do on
 * a single Redis. The loop goes on serving HTTP while the batch is out and
 * reads each node's replies as they come. Each check keeps its own outcome
 * within the batch.
 *
 * Breakers. One per node, not one for the cluster: when a master dies, only
 * the keys of its slots fail over (fast, once its breaker is open) while the
 * other masters keep deciding; the breaker's cool-down is also that node's
 * reconnection backoff. After a failover the refreshed map no longer points
 * at the dead node and its breaker no longer matters.
 *
 * Health. The store is healthy while its map covers every slot and every
 * master serving slots is: breaker closed, last call answered. It is a
 * function of the masters' states, not of the last batch's outcome, which
 * under load with one master failing would say up and down in turn (the
 * batches that miss that master succeed). While the store is unhealthy, a
 * prober thread of its own (redis_common.h) fetches the map again and sends
 * every master a script call that writes a key of its own slots, so that
 * health comes back without a check once every master takes a write (a
 * master at maxmemory answers PING but refuses every check).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../http/loop.h"
#include "../log.h"
#include "redis_common.h"
#include "reply_arena.h"
#include "thread_records.h"

#define SLOTS 16384
#define MAX_NODES 256
#define NO_NODE 0xFFFF
#define MAX_SEEDS 32
#define HOST_MAX 255
#define REDIRECTS_MAX 5    /* per request and call: MOVED then ASK, and some slack */
#define ROUNDS_MAX 8       /* pipelined rounds per call */
#define REFRESH_GAP_MS 100 /* between two refreshes asked for by failures */
#define REFRESH_PERIOD_MS 10000
#define REFRESH_TRIES 4 /* nodes asked for CLUSTER SLOTS per refresh */
#define STACK_JOBS 32
#define AUTH_LOG_MS 30000 /* between two logs of a refused AUTH */

typedef struct rk_cluster_store rk_cluster_store_t;

/* A node: written once before being published, read without a lock after. */
typedef struct {
    char host[HOST_MAX + 1];
    int port;
    char who[HOST_MAX + 48]; /* "redis cluster node host:port", for logs */
    rk_redis_gate_t gate;
} node_t;

/* What one call did with one node (scratch, per thread). */
typedef struct {
    bool entered, admitted, ok, fresh, auth_sent, loads_sent, loads_failed, replied;
    rk_breaker_ticket_t ticket;
} node_call_t;

typedef struct round_pipe round_pipe_t;

/* One thread's connections, one per node index; NULL while disconnected. */
typedef struct {
    rk_thread_record_t record; /* first: the store's registry of threads */
    redisContext *ctx[MAX_NODES];
    bool need_auth[MAX_NODES];    /* AUTH before the next commands on ctx (a new one) */
    bool need_load[MAX_NODES];    /* SCRIPT LOAD before the next commands on ctx */
    node_call_t calls[MAX_NODES]; /* all zero between calls */
    round_pipe_t *in_flight;      /* this thread's loop batch awaiting its replies */
    int watched[MAX_NODES];       /* 1 + ctx[node]'s fd, once in the loop pipe's epoll set */
} thread_conns_t;

struct rk_cluster_store {
    rk_store_t base;
    rk_redis_common_t common;
    /* AUTH on every connection to every node when password is set (from the seeds). */
    char user[sizeof(((rk_redis_url_t *)0)->user)];
    char password[sizeof(((rk_redis_url_t *)0)->password)];
    atomic_llong auth_logged_ms; /* when a refused AUTH was last logged (monotonic) */

    node_t nodes[MAX_NODES]; /* the seeds first, then the nodes met */
    atomic_size_t node_count;
    size_t seed_count;
    pthread_mutex_t nodes_lock; /* serialises additions */

    _Atomic uint16_t slot_owner[SLOTS]; /* node index, NO_NODE when unknown */
    atomic_llong refreshed_ms;          /* monotonic time of the last refresh attempt */
    atomic_bool refresh_due;
    atomic_bool refreshing; /* one refresher at a time */
    atomic_bool map_complete;
    atomic_uint refresh_cursor; /* where the next refresh starts asking */

    rk_thread_records_t threads; /* each thread's thread_conns_t */
    rk_redis_prober_t prober;    /* refreshes the map and probes the masters while unhealthy */
    /* The prober's own: 1 + the number of each node's probe name, 0 while it has none. */
    unsigned probe_number[MAX_NODES];
};

/* ================================================================ */
/* Slots                                                             */
/* ================================================================ */

/* CRC16-XMODEM (polynomial 0x1021, initial value 0), the one Redis Cluster uses. */
uint16_t rk_redis_cluster_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The hash tag is the text between the first '{' and the first '}' after it, when not empty. */
unsigned rk_redis_cluster_keyslot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close && close > key + from)
            return rk_redis_cluster_crc16(key + from, (size_t)(close - (key + from))) & (SLOTS - 1);
    }
    return rk_redis_cluster_crc16(key, len) & (SLOTS - 1);
}

/* ================================================================ */
/* Nodes and the slot map                                            */
/* ================================================================ */

/* Index of host:port in the node table, added when new; -1 when the table is full. */
static int node_index(rk_cluster_store_t *s, const char *host, size_t host_len, int port) {
    if (host_len == 0 || host_len > HOST_MAX)
        return -1;
    size_t n = atomic_load_explicit(&s->node_count, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (s->nodes[i].port == port && strlen(s->nodes[i].host) == host_len &&
            memcmp(s->nodes[i].host, host, host_len) == 0)
            return (int)i;
    pthread_mutex_lock(&s->nodes_lock);
    n = atomic_load(&s->node_count);
    int found = -1;
    for (size_t i = 0; i < n && found < 0; i++)
        if (s->nodes[i].port == port && strlen(s->nodes[i].host) == host_len &&
            memcmp(s->nodes[i].host, host, host_len) == 0)
            found = (int)i;
    if (found < 0 && n < MAX_NODES) {
        node_t *node = &s->nodes[n];
        memcpy(node->host, host, host_len);
        node->host[host_len] = '\0';
        node->port = port;
        snprintf(node->who, sizeof node->who, "redis cluster node %.*s:%d", (int)host_len, host,
                 port);
        rk_redis_gate_init(&node->gate);
        atomic_store_explicit(&s->node_count, n + 1, memory_order_release);
        found = (int)n;
    } else if (found < 0) {
        rk_warn("redis cluster: more than %d nodes met; %.*s:%d is not used", MAX_NODES,
                (int)host_len, host, port);
    }
    pthread_mutex_unlock(&s->nodes_lock);
    return found;
}

static int slot_node(rk_cluster_store_t *s, unsigned slot) {
    uint16_t v = atomic_load_explicit(&s->slot_owner[slot], memory_order_relaxed);
    return v == NO_NODE ? -1 : (int)v;
}

static void want_refresh(rk_cluster_store_t *s) {
    if (!atomic_load_explicit(&s->refresh_due, memory_order_relaxed))
        atomic_store_explicit(&s->refresh_due, true, memory_order_relaxed);
}

/* ================================================================ */
/* Connections                                                       */
/* ================================================================ */

static void conn_drop(thread_conns_t *t, int node) {
    if (t->ctx[node]) {
        rk_reply_context_free(t->ctx[node]); /* its fd, closed, leaves any epoll set */
        t->ctx[node] = NULL;
        t->watched[node] = 0;
    }
}

static void conns_record_drop(rk_thread_record_t *r) {
    for (int i = 0; i < MAX_NODES; i++)
        conn_drop((thread_conns_t *)r, i);
}

static void round_collect(round_pipe_t *p, bool wait);

/*
 * This thread's connections, created (none connected) on first use. A batch
 * of this thread's event loop still awaiting its replies is finished first:
 * they come before those of anything sent now.
 */
static thread_conns_t *thread_conns(rk_cluster_store_t *s) {
    thread_conns_t *t = (thread_conns_t *)rk_thread_record(&s->threads);
    if (t && t->in_flight)
        round_collect(t->in_flight, true);
    return t;
}

/*
 * Connects this thread to a node (TCP and timeouts; AUTH, when the cluster
 * has a password, and the scripts go with the next commands).
 */
static rk_status_t conn_open(rk_cluster_store_t *s, thread_conns_t *t, int node, char *err,
                             size_t errlen) {
    conn_drop(t, node);
    redisContext *ctx =
        rk_redis_connect_store(&s->common, s->nodes[node].host, s->nodes[node].port, err, errlen);
    t->ctx[node] = ctx;
    t->need_auth[node] = s->password[0] != '\0';
    t->need_load[node] = true;
    return ctx ? RK_OK : RK_ERR;
}

/* Sends a new connection's AUTH now and waits for its reply (off the hot path). */
static rk_status_t conn_auth_now(rk_cluster_store_t *s, thread_conns_t *t, int node, char *err,
                                 size_t errlen) {
    if (!t->need_auth[node])
        return RK_OK;
    char detail[256];
    if (rk_redis_auth(t->ctx[node], true, s->user, s->password, detail, sizeof detail) != RK_OK) {
        rk_redis_set_err(err, errlen, "redis cluster: %s:%d: %s", s->nodes[node].host,
                         s->nodes[node].port, detail);
        conn_drop(t, node);
        return RK_ERR;
    }
    t->need_auth[node] = false;
    return RK_OK;
}

/* ================================================================ */
/* Slot map refresh                                                  */
/* ================================================================ */

/*
 * Reads a CLUSTER SLOTS reply into owner[] (node indexes, NO_NODE for
 * slots nobody serves). An empty address means the node asked. Returns the
 * number of slots covered, -1 if the reply is malformed.
 */
static long parse_slots(rk_cluster_store_t *s, const redisReply *r, int asked, uint16_t *owner) {
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < SLOTS; i++)
        owner[i] = NO_NODE;
    long covered = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *range = r->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            range->element[0]->type != REDIS_REPLY_INTEGER ||
            range->element[1]->type != REDIS_REPLY_INTEGER)
            return -1;
        long long from = range->element[0]->integer, to = range->element[1]->integer;
        const redisReply *master = range->element[2];
        if (from < 0 || to >= SLOTS || from > to || master->type != REDIS_REPLY_ARRAY ||
            master->elements < 2 || master->element[0]->type != REDIS_REPLY_STRING ||
            master->element[1]->type != REDIS_REPLY_INTEGER)
            return -1;
        const char *host = master->element[0]->str;
        size_t host_len = master->element[0]->len;
        if (host_len == 0) {
            host = s->nodes[asked].host;
            host_len = strlen(host);
        }
        long long port = master->element[1]->integer;
        if (port < 1 || port > 65535 || (host_len == 1 && host[0] == '?'))
            continue; /* an endpoint the node does not know yet */
        int idx = node_index(s, host, host_len, (int)port);
        if (idx < 0)
            continue;
        for (long long slot = from; slot <= to; slot++) {
            if (owner[slot] == NO_NODE)
                covered++;
            owner[slot] = (uint16_t)idx;
        }
    }
    return covered;
}

/* Installs owner[] (covering `covered` slots, as node answered) as the slot map. */
static void install_map(rk_cluster_store_t *s, const node_t *node, const uint16_t *owner,
                        long covered, char *err, size_t errlen) {
    for (size_t slot = 0; slot < SLOTS; slot++)
        atomic_store_explicit(&s->slot_owner[slot], owner[slot], memory_order_relaxed);
    bool complete = covered == SLOTS;
    bool was_complete = atomic_exchange(&s->map_complete, complete);
    if (!complete) {
        rk_redis_set_err(err, errlen, "redis cluster: %s:%d serves %ld of %d slots", node->host,
                         node->port, covered, SLOTS);
        if (was_complete)
            rk_warn("redis cluster: the slot map covers %ld of %d slots", covered, SLOTS);
    }
}

/*
 * Asks node n for CLUSTER SLOTS on this thread's connection and installs
 * the map it answers (owner[]: SLOTS entries of scratch). RK_ERR with err
 * set when it answered none.
 */
static rk_status_t refresh_from(rk_cluster_store_t *s, thread_conns_t *t, int n, uint16_t *owner,
                                char *err, size_t errlen) {
    const node_t *node = &s->nodes[n];
    redisReply *r = NULL;
    long covered = -1;
    if ((t->ctx[n] || conn_open(s, t, n, err, errlen) == RK_OK) &&
        conn_auth_now(s, t, n, err, errlen) == RK_OK) {
        r = redisCommand(t->ctx[n], "CLUSTER SLOTS");
        covered = r ? parse_slots(s, r, n, owner) : -1;
        if (covered < 0) {
            char detail[256];
            rk_redis_describe_failure(t->ctx[n], r, "CLUSTER SLOTS", detail, sizeof detail);
            rk_redis_set_err(err, errlen, "redis cluster: %s:%d: %s", node->host, node->port,
                             detail);
            if (!r || t->ctx[n]->err)
                conn_drop(t, n);
        }
    }
    if (covered >= 0)
        install_map(s, node, owner, covered, err, errlen);
    if (r)
        rk_reply_free(r);
    return covered >= 0 ? RK_OK : RK_ERR;
}

/*
 * Asks up to REFRESH_TRIES known nodes (from a rotating start, through their
 * breakers, so that a dead seed is not asked again before its cool-down) for
 * CLUSTER SLOTS, on this thread's connections, and installs the first map
 * answered. The nodes whose last call was answered are asked first: this
 * may run on an event loop, and a stalled node would hold it for a command
 * timeout. RK_ERR with err set when no node answered.
 */
static rk_status_t refresh_map(rk_cluster_store_t *s, thread_conns_t *t, char *err, size_t errlen) {
    uint16_t *owner = malloc(SLOTS * sizeof *owner);
    if (!owner) {
        rk_redis_set_err(err, errlen, "redis cluster: out of memory");
        return RK_ERR;
    }
    rk_redis_set_err(err, errlen, "redis cluster: every known node failed a moment ago");
    size_t count = atomic_load_explicit(&s->node_count, memory_order_acquire);
    unsigned start = atomic_fetch_add(&s->refresh_cursor, 1);
    rk_status_t st = RK_ERR;
    int tries = 0;
    bool asked[MAX_NODES] = {false};
    for (int pass = 0; pass < 2 && st != RK_OK; pass++) {
        for (size_t k = 0; k < count && st != RK_OK && tries < REFRESH_TRIES; k++) {
            int n = (int)((start + k) % count);
            node_t *node = &s->nodes[n];
            rk_breaker_ticket_t ticket;
            if (asked[n] || (pass == 0 && !rk_redis_gate_healthy(&node->gate)) ||
                !rk_redis_gate_enter(&node->gate, &ticket))
                continue;
            asked[n] = true;
            tries++;
            st = refresh_from(s, t, n, owner, err, errlen);
            rk_redis_gate_leave(&node->gate, ticket, st == RK_OK, node->who);
        }
    }
    free(owner);
    return st;
}

/*
 * Refreshes the map on this thread when it is asked for (and the last try is
 * REFRESH_GAP_MS old) or REFRESH_PERIOD_MS old, unless another thread is at
 * it. force skips the wait for a request (not the gap).
 */
static void maybe_refresh(rk_cluster_store_t *s, thread_conns_t *t, bool force) {
    int64_t now = rk_mono_ms(), last = atomic_load_explicit(&s->refreshed_ms, memory_order_relaxed);
    bool due = atomic_load_explicit(&s->refresh_due, memory_order_relaxed) || force;
    if (!((due && now - last >= REFRESH_GAP_MS) || now - last >= REFRESH_PERIOD_MS))
        return;
    bool idle = false;
    if (!atomic_compare_exchange_strong(&s->refreshing, &idle, true))
        return;
    atomic_store(&s->refreshed_ms, now);
    atomic_store(&s->refresh_due, false);
    char err[256];
    if (refresh_map(s, t, err, sizeof err) != RK_OK) {
        rk_debug("%s", err);
        atomic_store(&s->refresh_due, true);
    }
    atomic_store(&s->refreshing, false);
}

/* ================================================================ */
/* Batches of commands, routed, pipelined per node                  */
/* ================================================================ */

typedef enum { JOB_PENDING, JOB_DONE, JOB_FAILED } job_state_t;

typedef struct {
    unsigned slot;
    int node;      /* where it goes next; -1: nowhere known */
    int redirects; /* MOVED and ASK followed so far */
    int moved_by;  /* the node whose MOVED sent it where it is now; -1: none */
    job_state_t state;
    bool asking;    /* preceded by ASKING (an ASK redirection) */
    bool sent;      /* in the current round */
    bool ping_pong; /* two nodes sent it to each other: ASKING on every try */
} job_t;

typedef struct batch batch_t;

/* What a batch sends and how it takes the replies. */
struct batch {
    /* Appends job i's command to ctx. */
    int (*append)(batch_t *b, size_t i, redisContext *ctx);
    /* Takes job i's reply (may steal it: *r = NULL); false: the job failed. */
    bool (*take)(batch_t *b, size_t i, redisReply **r);
    rk_cluster_store_t *store;
    job_t *jobs;
    size_t n;
    /* script calls */
    const rk_store_req_t *reqs;
    rk_redis_op_t op;
    const char *lease_id;
    rk_decision_t *out;
    bool *released;
    /* plain commands */
    const rk_redis_cluster_cmd_t *cmds;
    redisReply **replies;
};

/* Parses "<slot> <host>:<port>" after MOVED/ASK; the target node index or -1. */
static int redirect_target(rk_cluster_store_t *s, const redisReply *r, int from, unsigned *slot) {
    const char *p = memchr(r->str, ' ', r->len);
    if (!p)
        return -1;
    const char *end = r->str + r->len;
    char *after;
    long v = strtol(p + 1, &after, 10);
    if (after == p + 1 || after >= end || *after != ' ' || v < 0 || v >= SLOTS)
        return -1;
    const char *addr = after + 1;
    const char *colon = NULL;
    for (const char *q = addr; q < end; q++)
        if (*q == ':')
            colon = q;
    if (!colon || colon + 1 >= end || end - (colon + 1) > 5)
        return -1;
    int port = 0;
    for (const char *q = colon + 1; q < end; q++) {
        if (*q < '0' || *q > '9')
            return -1;
        port = port * 10 + (*q - '0');
    }
    if (port < 1 || port > 65535)
        return -1;
    *slot = (unsigned)v;
    if (colon == addr) /* ":port": the same host as the node that answered */
        return node_index(s, s->nodes[from].host, strlen(s->nodes[from].host), port);
    return node_index(s, addr, (size_t)(colon - addr), port);
}

/* Marks the jobs sent to node this round failed. */
static void fail_sent(batch_t *b, int node) {
    for (size_t i = 0; i < b->n; i++)
        if (b->jobs[i].node == node && b->jobs[i].sent && b->jobs[i].state == JOB_PENDING)
            b->jobs[i].state = JOB_FAILED;
}

/*
 * A dead connection to node: the jobs sent there are resent on a new
 * connection when it looks like one the server closed while idle and nothing
 * was read from it yet; otherwise they fail. The map is refreshed soon.
 */
static void node_io_failure(batch_t *b, thread_conns_t *t, node_call_t *nc, int node,
                            int io_errno) {
    bool stale = !nc->fresh && !nc->replied && rk_redis_looks_stale(t->ctx[node], io_errno);
    conn_drop(t, node);
    want_refresh(b->store);
    if (!stale) {
        nc->ok = false;
        fail_sent(b, node);
    }
}

/* Opens the gate and the connection of node for this call; false: its jobs fail. */
static bool node_ready(batch_t *b, thread_conns_t *t, node_call_t *nc, int node) {
    rk_cluster_store_t *s = b->store;
    if (!nc->entered) {
        nc->entered = true;
        nc->ok = true;
        nc->admitted = rk_redis_gate_enter(&s->nodes[node].gate, &nc->ticket);
        if (!nc->admitted)
            want_refresh(s);
    }
    if (!nc->admitted || !nc->ok)
        return false;
    if (!t->ctx[node]) {
        if (nc->fresh || conn_open(s, t, node, NULL, 0) != RK_OK) {
            nc->ok = false;
            want_refresh(s);
            return false;
        }
        nc->fresh = true;
    }
    return true;
}

/* Writes the pipeline of node (script loads if needed, then its pending jobs) to the socket. */
static void send_node(batch_t *b, thread_conns_t *t, node_call_t *nc, int node) {
    redisContext *ctx = t->ctx[node];
    int ok = REDIS_OK;
    nc->auth_sent = t->need_auth[node];
    nc->loads_sent = t->need_load[node];
    nc->loads_failed = false;
    nc->replied = false;
    if (nc->auth_sent)
        ok = rk_redis_append_auth(ctx, b->store->user, b->store->password);
    if (nc->loads_sent && ok == REDIS_OK)
        ok = rk_redis_append_script_loads(&b->store->common, ctx);
    for (size_t i = 0; i < b->n && ok == REDIS_OK; i++) {
        job_t *j = &b->jobs[i];
        if (j->state != JOB_PENDING || j->node != node)
            continue;
        if (j->asking)
            ok = redisAppendCommand(ctx, "ASKING");
        if (ok == REDIS_OK)
            ok = b->append(b, i, ctx);
        j->sent = true;
    }
    int done = 0;
    errno = 0;
    while (ok == REDIS_OK && !done)
        ok = redisBufferWrite(ctx, &done);
    if (ok != REDIS_OK)
        node_io_failure(b, t, nc, node, errno);
}

/*
 * Reads the reply to a new connection's AUTH; false when the node refused
 * it: the jobs sent there fail, the connection is dropped and why is logged
 * (at most every AUTH_LOG_MS; never the password).
 */
static bool read_auth(batch_t *b, thread_conns_t *t, node_call_t *nc, int node) {
    rk_cluster_store_t *s = b->store;
    redisContext *ctx = t->ctx[node];
    redisReply *r = NULL;
    errno = 0;
    if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
        node_io_failure(b, t, nc, node, errno);
        return false;
    }
    nc->replied = true;
    bool ok = r->type == REDIS_REPLY_STATUS;
    if (ok) {
        t->need_auth[node] = false;
    } else {
        char detail[256];
        rk_redis_describe_failure(ctx, r, "AUTH", detail, sizeof detail);
        long long now = rk_mono_ms(), last = atomic_load(&s->auth_logged_ms);
        if ((last == 0 || now - last >= AUTH_LOG_MS) &&
            atomic_compare_exchange_strong(&s->auth_logged_ms, &last, now))
            rk_warn("%s: %s", s->nodes[node].who, detail);
        nc->ok = false;
        fail_sent(b, node);
        conn_drop(t, node);
    }
    rk_reply_free(r);
    return ok;
}

/* Reads node's replies in the order sent; follows MOVED and ASK; notes NOSCRIPT. */
static void read_node(batch_t *b, thread_conns_t *t, node_call_t *nc, int node) {
    rk_cluster_store_t *s = b->store;
    if (nc->auth_sent && !read_auth(b, t, nc, node))
        return;
    redisContext *ctx = t->ctx[node];
    if (nc->loads_sent) {
        if (rk_redis_read_script_loads(&s->common, ctx, NULL, 0) != RK_OK) {
            if (ctx->err) {
                node_io_failure(b, t, nc, node, errno);
                return;
            }
            nc->loads_failed = true;
        } else {
            t->need_load[node] = false;
        }
        nc->replied = true;
    }
    for (size_t i = 0; i < b->n; i++) {
        job_t *j = &b->jobs[i];
        if (!j->sent || j->node != node || j->state != JOB_PENDING)
            continue;
        redisReply *r = NULL;
        bool asking_failed = false;
        errno = 0;
        if (j->asking) {
            if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
                node_io_failure(b, t, nc, node, errno);
                return;
            }
            nc->replied = true;
            asking_failed = r->type == REDIS_REPLY_ERROR;
            rk_reply_free(r);
            r = NULL;
        }
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            node_io_failure(b, t, nc, node, errno);
            return;
        }
        nc->replied = true;
        j->sent = false;
        bool moved = rk_redis_is_error(r, "MOVED"), ask = rk_redis_is_error(r, "ASK");
        if (moved || ask) {
            unsigned slot = j->slot;
            int target = redirect_target(s, r, node, &slot);
            if (target < 0 || ++j->redirects > REDIRECTS_MAX) {
                rk_debug("redis cluster: %s:%d: %.*s (redirection %d): giving up",
                         s->nodes[node].host, s->nodes[node].port, (int)r->len, r->str,
                         j->redirects);
                j->state = JOB_FAILED;
                nc->ok = false;
            } else {
                /*
                 * Two nodes sending it to each other: a migration is ending,
                 * the old owner has given the slot away and the new one,
                 * not yet told, still imports it. The importing node serves
                 * the slot under ASKING (which the other ignores), so every
                 * further try carries ASKING.
                 */
                if (moved && target == j->moved_by)
                    j->ping_pong = true;
                if (moved) {
                    atomic_store_explicit(&s->slot_owner[slot], (uint16_t)target,
                                          memory_order_relaxed);
                    want_refresh(s);
                }
                j->moved_by = moved ? node : -1;
                j->node = target;
                j->asking = ask || j->ping_pong;
            }
        } else if (rk_redis_is_error(r, "NOSCRIPT") && !nc->loads_failed) {
            /* The node lost its scripts (again, if just loaded: SCRIPT FLUSH in
             * between): load and resend, within ROUNDS_MAX. */
            t->need_load[node] = true;
        } else if (asking_failed || !b->take(b, i, &r)) {
            if (r && r->type == REDIS_REPLY_ERROR)
                rk_debug("redis cluster: %s:%d: %.*s", s->nodes[node].host, s->nodes[node].port,
                         (int)r->len, r->str);
            j->state = JOB_FAILED;
            nc->ok = false;
            if (r && rk_redis_is_error(r, "CLUSTERDOWN"))
                want_refresh(s);
        } else {
            j->state = JOB_DONE;
        }
        if (r)
            rk_reply_free(r);
    }
}

/*
 * The nodes one round of a batch sends to: every node with a pending job,
 * when ready (the jobs of a node that is not ready fail). Each node entered is
 * added to used[]. Returns the number written to sending[].
 */
static size_t batch_group(batch_t *b, thread_conns_t *t, int *sending, int *used,
                          size_t *used_count) {
    node_call_t *calls = t->calls;
    size_t sending_count = 0;
    for (size_t i = 0; i < b->n; i++) {
        job_t *j = &b->jobs[i];
        if (j->state != JOB_PENDING)
            continue;
        if (j->node < 0) {
            j->state = JOB_FAILED;
            continue;
        }
        node_call_t *nc = &calls[j->node];
        if (!nc->entered)
            used[(*used_count)++] = j->node;
        bool listed = false;
        for (size_t k = 0; k < sending_count && !listed; k++)
            listed = sending[k] == j->node;
        if (listed)
            continue;
        if (!node_ready(b, t, nc, j->node)) {
            for (size_t k = i; k < b->n; k++)
                if (b->jobs[k].node == j->node && b->jobs[k].state == JOB_PENDING)
                    b->jobs[k].state = JOB_FAILED;
            continue;
        }
        sending[sending_count++] = j->node;
    }
    return sending_count;
}

/*
 * Rounds of "write every node's pipeline, then read every node's replies",
 * from round `round` on, until no job is pending (or ROUNDS_MAX).
 */
static void batch_rounds(batch_t *b, thread_conns_t *t, int round, int *used, size_t *used_count) {
    for (; round < ROUNDS_MAX; round++) {
        int sending[MAX_NODES];
        size_t sending_count = batch_group(b, t, sending, used, used_count);
        if (sending_count == 0)
            break;
        for (size_t k = 0; k < sending_count; k++)
            send_node(b, t, &t->calls[sending[k]], sending[k]);
        for (size_t k = 0; k < sending_count; k++)
            if (t->ctx[sending[k]])
                read_node(b, t, &t->calls[sending[k]], sending[k]);
    }
}

/*
 * Ends a batch: what is still pending fails, and each node entered reports
 * its outcome to its breaker. RK_ERR when any job failed.
 */
static rk_status_t batch_end(batch_t *b, thread_conns_t *t, const int *used, size_t used_count) {
    rk_cluster_store_t *s = b->store;
    node_call_t *calls = t->calls;
    rk_status_t st = RK_OK;
    for (size_t i = 0; i < b->n; i++) {
        if (b->jobs[i].state == JOB_PENDING) {
            b->jobs[i].state = JOB_FAILED;
            if (b->jobs[i].node >= 0)
                calls[b->jobs[i].node].ok = false;
        }
        if (b->jobs[i].state == JOB_FAILED)
            st = RK_ERR;
    }
    for (size_t k = 0; k < used_count; k++) {
        node_call_t *nc = &calls[used[k]];
        if (nc->admitted)
            rk_redis_gate_leave(&s->nodes[used[k]].gate, nc->ticket, nc->ok, s->nodes[used[k]].who);
        memset(nc, 0, sizeof *nc);
    }
    return st;
}

/* Runs a batch whose jobs have their slot and first node set, waiting for every reply. */
static rk_status_t run_batch(batch_t *b, thread_conns_t *t) {
    int used[MAX_NODES];
    size_t used_count = 0;
    batch_rounds(b, t, 0, used, &used_count);
    return batch_end(b, t, used, used_count);
}

/* Sets each job's first node from its slot, refreshing the map first when needed. */
static void route_jobs(rk_cluster_store_t *s, thread_conns_t *t, job_t *jobs, size_t n) {
    maybe_refresh(s, t, false);
    bool unknown = false;
    for (size_t i = 0; i < n; i++) {
        jobs[i].node = slot_node(s, jobs[i].slot);
        unknown |= jobs[i].node < 0;
    }
    if (!unknown)
        return;
    maybe_refresh(s, t, true);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].node < 0)
            jobs[i].node = slot_node(s, jobs[i].slot);
}

/* ---- script calls ---- */

static int append_script(batch_t *b, size_t i, redisContext *ctx) {
    return rk_redis_append_eval(&b->store->common, ctx, &b->reqs[i], b->op, b->lease_id);
}

static bool take_script(batch_t *b, size_t i, redisReply **r) {
    return rk_redis_parse_reply(*r, &b->reqs[i], b->op, &b->out[i], b->released);
}

/*
 * Makes *b the batch of n script calls (decide or release), with jobs[] (n
 * of them) as its bookkeeping, each job's slot and first node set.
 */
static void scripts_batch(batch_t *b, rk_cluster_store_t *s, thread_conns_t *t,
                          const rk_store_req_t *reqs, size_t n, rk_redis_op_t op,
                          const char *lease_id, rk_decision_t *out, bool *released, job_t *jobs) {
    for (size_t i = 0; i < n; i++) {
        char key[RK_REDIS_KEY_BUF];
        size_t len = rk_redis_build_key(&s->common, reqs[i].rule_id, reqs[i].key,
                                        reqs[i].limit.algorithm, key);
        jobs[i] = (job_t){
            .slot = rk_redis_cluster_keyslot(key, len), .state = JOB_PENDING, .moved_by = -1};
    }
    route_jobs(s, t, jobs, n);
    *b = (batch_t){.append = append_script,
                   .take = take_script,
                   .store = s,
                   .jobs = jobs,
                   .n = n,
                   .reqs = reqs,
                   .op = op,
                   .lease_id = lease_id,
                   .out = out,
                   .released = released};
}

/* Runs n script calls (decide or release) across the cluster, waiting for every reply. */
static rk_status_t run_scripts(rk_cluster_store_t *s, const rk_store_req_t *reqs, size_t n,
                               rk_redis_op_t op, const char *lease_id, rk_decision_t *out,
                               bool *released) {
    thread_conns_t *t = thread_conns(s);
    job_t stack_jobs[STACK_JOBS];
    job_t *jobs = n <= STACK_JOBS ? stack_jobs : calloc(n, sizeof *jobs);
    if (!t || !jobs) {
        if (jobs != stack_jobs)
            free(jobs);
        return RK_ERR;
    }
    batch_t b;
    scripts_batch(&b, s, t, reqs, n, op, lease_id, out, released, jobs);
    rk_status_t st = run_batch(&b, t);
    for (size_t i = 0; i < n && st != RK_OK; i++)
        if (jobs[i].state != JOB_DONE)
            out[i].limit = RK_STORE_UNDECIDED;
    if (jobs != stack_jobs)
        free(jobs);
    return st;
}

/* ---- plain commands ---- */

static int append_command(batch_t *b, size_t i, redisContext *ctx) {
    const rk_redis_cluster_cmd_t *c = &b->cmds[i];
    return redisAppendCommandArgv(ctx, c->argc, c->argv, c->argv_len);
}

/* A command's reply, copied out of the connection's arena for its caller. */
static bool take_command(batch_t *b, size_t i, redisReply **r) {
    redisReply *copy = rk_reply_plain_copy(*r);
    if (!copy)
        return false;
    rk_reply_free(*r);
    *r = NULL;
    b->replies[i] = copy;
    return true;
}

/* Runs commands on the nodes given in jobs[] (slot and node set by the caller). */
static rk_status_t run_commands(rk_cluster_store_t *s, thread_conns_t *t, job_t *jobs,
                                const rk_redis_cluster_cmd_t *cmds, size_t n,
                                redisReply **replies) {
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    batch_t b = {.append = append_command,
                 .take = take_command,
                 .store = s,
                 .jobs = jobs,
                 .n = n,
                 .cmds = cmds,
                 .replies = replies};
    return run_batch(&b, t);
}

rk_status_t rk_redis_cluster_run(rk_store_t *base, const rk_redis_cluster_cmd_t *cmds, size_t n,
                                 struct redisReply **replies) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    thread_conns_t *t = thread_conns(s);
    job_t stack_jobs[STACK_JOBS];
    job_t *jobs = n <= STACK_JOBS ? stack_jobs : calloc(n, sizeof *jobs);
    if (!t || !jobs) {
        for (size_t i = 0; i < n; i++)
            replies[i] = NULL;
        return RK_ERR;
    }
    for (size_t i = 0; i < n; i++)
        jobs[i] = (job_t){.slot = rk_redis_cluster_keyslot(cmds[i].key, cmds[i].key_len),
                          .state = JOB_PENDING,
                          .moved_by = -1};
    route_jobs(s, t, jobs, n);
    rk_status_t st = run_commands(s, t, jobs, cmds, n, replies);
    if (jobs != stack_jobs)
        free(jobs);
    return st;
}

struct redisContext *rk_redis_cluster_connect_for_key(rk_store_t *base, const char *key,
                                                      size_t key_len, char *err, size_t errlen) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    thread_conns_t *t = thread_conns(s);
    if (!t) {
        rk_redis_set_err(err, errlen, "redis cluster: out of memory");
        return NULL;
    }
    job_t job = {
        .slot = rk_redis_cluster_keyslot(key, key_len), .state = JOB_PENDING, .moved_by = -1};
    route_jobs(s, t, &job, 1);
    if (job.node < 0) {
        rk_redis_set_err(err, errlen, "redis cluster: no node serves slot %u", job.slot);
        return NULL;
    }
    redisContext *ctx =
        rk_redis_connect(&s->common, s->nodes[job.node].host, s->nodes[job.node].port, err, errlen);
    if (ctx && s->password[0]) {
        char detail[256];
        if (rk_redis_auth(ctx, false, s->user, s->password, detail, sizeof detail) != RK_OK) {
            rk_redis_set_err(err, errlen, "redis cluster: %s:%d: %s", s->nodes[job.node].host,
                             s->nodes[job.node].port, detail);
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* ================================================================ */
/* Store operations                                                  */
/* ================================================================ */

static rk_status_t cluster_decide(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                  rk_decision_t *out) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    if (n == 0)
        return RK_OK;
    if (!rk_redis_reqs_valid(reqs, n))
        return RK_ERR;
    bool unused = false;
    return run_scripts(s, reqs, n, RK_REDIS_OP_DECIDE, NULL, out, &unused);
}

static rk_status_t cluster_release(rk_store_t *base, const rk_store_req_t *req,
                                   const char *lease_id, bool *released) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    *released = false;
    if (!lease_id || !rk_redis_req_valid(req, lease_id))
        return RK_ERR;
    if (req->limit.algorithm != RK_ALG_CONCURRENCY)
        return RK_OK; /* no lease there: another script would spend the units as a check */
    rk_decision_t scratch;
    return run_scripts(s, req, 1, RK_REDIS_OP_RELEASE, lease_id, &scratch, released);
}

/* ---- on an event loop: the checks of a round in one batch ---- */

/*
 * On a data-plane event loop (http/loop.h) a check does not call the
 * cluster at once: it is queued, and when the loop's round of HTTP work
 * ends, every check queued in it goes out in one batch (one pipelined write
 * to each node concerned). The loop does not wait for the replies: it goes
 * on serving HTTP, watching its connections to the nodes (through an epoll
 * descriptor of the pipe's, the loop's source), and reads each node's
 * replies once they come. Between batches the watch notices a connection
 * the node closed, which is dropped at once. Redirections (MOVED, ASK), NOSCRIPT and stale
 * connections are then followed in further rounds that wait, as in any
 * batch: they are rare. When the batch is answered, the checks that came in
 * meanwhile make the next one. One batch is out at a time, so a node's
 * replies always belong to it. Each check keeps its own outcome: one whose
 * keys live on a failing node fails over alone.
 *
 * A node that has not answered when the command timeout has passed fails
 * its checks, and its connection is dropped (its replies would come late).
 * The checks queued meanwhile have waited that timeout already: they go
 * out in a batch of their own, in which their requests to that node fail at
 * once (round_skip_stalled) instead of waiting for a second timeout, so
 * that no check waits much more than one. Checks that come later try the
 * node again, through its breaker.
 */

#define ROUND_ITEMS_MAX 1024 /* requests per batch; a busier round makes several */

/* A queued check, or a lease release (lease_id set; n is 1). */
typedef struct {
    const rk_store_req_t *reqs;
    size_t n;
    rk_decision_t *out;
    const char *lease_id;
    bool *released;
    void (*done)(void *ctx, rk_status_t st);
    void *ctx;
} round_check_t;

struct round_pipe {
    rk_loop_source_t src; /* first: the loop hands it back as its source; src.fd: epoll_fd */
    rk_cluster_store_t *s;
    int epoll_fd; /* this thread's connections, each from its first batch on */
    /* checks[0..nflying) are in the batch out, checks[nflying..nchecks) queued since. */
    round_check_t *checks;
    size_t nchecks, checks_cap, nflying;
    /* The batch out (nflying > 0). */
    batch_t batch;
    thread_conns_t *conns;
    int used[MAX_NODES]; /* nodes entered by the batch */
    size_t used_count;
    int awaited[MAX_NODES]; /* nodes written to whose replies are not read yet */
    size_t awaited_count;
    bool unused;
    /* Nodes a batch gave up on at the command timeout, while checks[0..behind_stall)
     * (queued while that batch was out) are still to go; cleared after. */
    bool stalled[MAX_NODES];
    bool any_stalled;
    size_t behind_stall;
    rk_store_req_t reqs[ROUND_ITEMS_MAX]; /* the batch's requests, flat */
    rk_decision_t out[ROUND_ITEMS_MAX];
    job_t jobs[ROUND_ITEMS_MAX];
};

static int64_t command_timeout_ms(const rk_cluster_store_t *s) {
    return (int64_t)s->common.command_tv.tv_sec * 1000 + s->common.command_tv.tv_usec / 1000;
}

/* Drops checks[0..n): the rest (some maybe queued while answering) move down. */
static void round_drop(round_pipe_t *p, size_t n) {
    memmove(p->checks, p->checks + n, (p->nchecks - n) * sizeof *p->checks);
    p->nchecks -= n;
}

/*
 * Answers the batch out from its jobs' outcomes, and forgets it. A check
 * some of whose requests failed gets RK_ERR with those marked undecided:
 * the others keep the decision their nodes made (and counted).
 */
static void round_answer(round_pipe_t *p) {
    size_t at = 0;
    for (size_t c = 0; c < p->nflying; c++) {
        const round_check_t rc = p->checks[c]; /* a copy: done() may queue, moving checks */
        rk_status_t st = RK_OK;
        memcpy(rc.out, p->out + at, rc.n * sizeof *rc.out);
        for (size_t i = 0; i < rc.n; i++)
            if (p->jobs[at + i].state != JOB_DONE) {
                st = RK_ERR;
                rc.out[i].limit = RK_STORE_UNDECIDED;
            }
        at += rc.n;
        rc.done(rc.ctx, st);
    }
    round_drop(p, p->nflying);
    p->nflying = 0;
}

/*
 * Every node's first replies are read: runs the further rounds they asked
 * for, ends the batch and answers its checks.
 */
static void round_finish(round_pipe_t *p) {
    thread_conns_t *t = p->conns;
    t->in_flight = NULL; /* before anything else uses the connections */
    p->src.deadline_ms = 0;
    batch_rounds(&p->batch, t, 1, p->used, &p->used_count);
    batch_end(&p->batch, t, p->used, p->used_count);
    round_answer(p);
}

/*
 * Marks in readable[] the nodes whose sockets have something to read. A
 * socket that does but is not awaited holds what nobody asked for, or the
 * end of its connection: that connection is dropped, or it would keep the
 * loop awake.
 */
static void round_poll(round_pipe_t *p, bool *readable) {
    struct epoll_event ev[MAX_NODES];
    int nev = epoll_wait(p->epoll_fd, ev, MAX_NODES, 0);
    for (int e = 0; e < nev; e++) {
        int node = (int)ev[e].data.u32;
        bool awaited = false;
        for (size_t k = 0; k < p->awaited_count && !awaited; k++)
            awaited = p->awaited[k] == node;
        if (awaited)
            readable[node] = true;
        else
            conn_drop(p->conns, node);
    }
}

/* node let the batch out reach the command timeout: every check queued meanwhile waited for it. */
static void round_stalled(round_pipe_t *p, int node) {
    p->stalled[node] = true;
    p->any_stalled = true;
    p->behind_stall = p->nchecks - p->nflying;
}

/* n of the checks queued behind a stall went out (or were answered); forgets it after the last. */
static void round_stall_spent(round_pipe_t *p, size_t n) {
    p->behind_stall -= n < p->behind_stall ? n : p->behind_stall;
    if (p->behind_stall == 0 && p->any_stalled) {
        memset(p->stalled, 0, sizeof p->stalled);
        p->any_stalled = false;
    }
}

/*
 * Fails at once the requests that checks[0..last), the batch being made,
 * send to a node that stalled while they were queued: those checks have
 * waited a command timeout already, and the node did not answer within
 * one. The node's breaker is not entered (nothing was tried).
 */
static void round_skip_stalled(round_pipe_t *p, size_t last) {
    if (RK_LIKELY(!p->any_stalled))
        return;
    size_t behind = last < p->behind_stall ? last : p->behind_stall, items = 0;
    for (size_t c = 0; c < behind; c++)
        items += p->checks[c].n;
    for (size_t i = 0; i < items; i++)
        if (p->jobs[i].node >= 0 && p->stalled[p->jobs[i].node])
            p->jobs[i].state = JOB_FAILED;
    round_stall_spent(p, behind);
}

/* Whether checks[0], a release, was queued behind a stall of the node it goes to. */
static bool round_release_stalled(round_pipe_t *p) {
    if (RK_LIKELY(!p->any_stalled) || p->behind_stall == 0)
        return false;
    const rk_store_req_t *req = p->checks[0].reqs;
    char key[RK_REDIS_KEY_BUF];
    size_t len =
        rk_redis_build_key(&p->s->common, req->rule_id, req->key, req->limit.algorithm, key);
    int node = slot_node(p->s, rk_redis_cluster_keyslot(key, len));
    return node >= 0 && p->stalled[node];
}

/*
 * Reads the replies of the awaited nodes that have some (of every awaited
 * node, waiting for them, when wait); an awaited node past the command
 * timeout fails. The batch is finished once no node is awaited.
 */
static void round_collect(round_pipe_t *p, bool wait) {
    thread_conns_t *t = p->conns;
    bool readable[MAX_NODES] = {false};
    if (!wait)
        round_poll(p, readable);
    bool late = !wait && rk_mono_ms() >= p->src.deadline_ms;
    for (size_t k = 0; k < p->awaited_count;) {
        int node = p->awaited[k];
        if (!wait && !readable[node] && !late) {
            k++;
            continue;
        }
        if (t->ctx[node] && (wait || readable[node])) {
            read_node(&p->batch, t, &t->calls[node], node);
        } else if (t->ctx[node]) {
            node_io_failure(&p->batch, t, &t->calls[node], node, ETIMEDOUT);
            round_stalled(p, node);
        }
        p->awaited[k] = p->awaited[--p->awaited_count];
    }
    if (p->awaited_count == 0)
        round_finish(p);
}

/* Puts node's socket in the pipe's epoll set, once per connection; false when it cannot be. */
static bool round_watch(round_pipe_t *p, thread_conns_t *t, int node) {
    int fd = t->ctx[node]->fd;
    if (t->watched[node] == fd + 1)
        return true;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)node};
    if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return false;
    t->watched[node] = fd + 1;
    return true;
}

/*
 * Writes checks[0..) as one batch, as many checks as fit up to the next
 * release, and leaves its replies to the loop (nflying > 0 then); a release
 * goes alone, and waits for its reply.
 */
static void round_start(round_pipe_t *p) {
    rk_cluster_store_t *s = p->s;
    if (p->checks[0].lease_id) {
        const round_check_t rc = p->checks[0];
        bool stalled = round_release_stalled(p);
        rk_decision_t scratch;
        round_drop(p, 1);
        round_stall_spent(p, 1);
        rc.done(rc.ctx, stalled ? RK_ERR
                                : run_scripts(s, rc.reqs, 1, RK_REDIS_OP_RELEASE, rc.lease_id,
                                              &scratch, rc.released));
        return;
    }
    /* The checks queued behind a stall make a batch of their own: one that came
     * later and goes to the stalled node would hold them for another timeout. */
    size_t last = 0, total = 0, most = p->behind_stall ? p->behind_stall : p->nchecks;
    for (; last < most && !p->checks[last].lease_id && total + p->checks[last].n <= ROUND_ITEMS_MAX;
         last++) {
        memcpy(p->reqs + total, p->checks[last].reqs, p->checks[last].n * sizeof *p->reqs);
        total += p->checks[last].n;
    }
    p->nflying = last;
    thread_conns_t *t = thread_conns(s);
    if (!t) {
        for (size_t i = 0; i < total; i++)
            p->jobs[i].state = JOB_FAILED;
        round_stall_spent(p, last);
        round_answer(p);
        return;
    }
    scripts_batch(&p->batch, s, t, p->reqs, total, RK_REDIS_OP_DECIDE, NULL, p->out, &p->unused,
                  p->jobs);
    round_skip_stalled(p, last);
    p->conns = t;
    p->used_count = 0;
    int sending[MAX_NODES];
    size_t sending_count = batch_group(&p->batch, t, sending, p->used, &p->used_count);
    p->awaited_count = 0;
    for (size_t k = 0; k < sending_count; k++) {
        int node = sending[k];
        send_node(&p->batch, t, &t->calls[node], node);
        if (t->ctx[node] && round_watch(p, t, node))
            p->awaited[p->awaited_count++] = node;
        else if (t->ctx[node])
            read_node(&p->batch, t, &t->calls[node], node); /* not watchable: wait here */
    }
    t->in_flight = p;
    p->src.deadline_ms = rk_mono_ms() + command_timeout_ms(s);
    if (p->awaited_count == 0) /* every node answered here, or none could be written to */
        round_finish(p);
}

/* The loop's round ended: the next batch goes out, unless one is out already. */
static void round_after(rk_loop_source_t *src) {
    round_pipe_t *p = (round_pipe_t *)src;
    while (p->nflying == 0 && p->nchecks > 0)
        round_start(p);
}

/* Replies came from some node, or the command timeout passed. */
static void round_ready(rk_loop_source_t *src, bool readable) {
    round_pipe_t *p = (round_pipe_t *)src;
    if (p->nflying > 0) {
        round_collect(p, false);
    } else if (readable && p->conns) { /* no batch out: only what nobody asked for */
        bool unused[MAX_NODES];
        round_poll(p, unused);
    }
}

static void round_close(rk_loop_source_t *src) {
    round_pipe_t *p = (round_pipe_t *)src;
    if (p->nflying > 0)
        round_collect(p, true);
    for (size_t c = 0; c < p->nchecks; c++)
        p->checks[c].done(p->checks[c].ctx, RK_ERR);
    close(p->epoll_fd);
    free(p->checks);
    free(p);
}

/* The store's pipe on the calling thread's loop, made on first use; NULL off a loop. */
static round_pipe_t *current_round_pipe(rk_cluster_store_t *s) {
    const rk_loop_source_t proto = {.owner = s,
                                    .fd = -1,
                                    .on_ready = round_ready,
                                    .after_round = round_after,
                                    .close = round_close};
    round_pipe_t *p = (round_pipe_t *)rk_loop_source(&proto, sizeof *p);
    if (p && !p->s) { /* new */
        p->s = s;
        p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        p->src.fd = p->epoll_fd; /* -1 when it failed: every batch then waits for its replies */
    }
    return p;
}

/* Queues c on the pipe for the round's batch. */
static rk_status_t round_queue(round_pipe_t *p, const round_check_t *c) {
    if (p->nchecks == p->checks_cap) {
        size_t cap = p->checks_cap ? p->checks_cap * 2 : 64;
        round_check_t *grown = realloc(p->checks, cap * sizeof *grown);
        if (!grown)
            return RK_ERR;
        p->checks = grown;
        p->checks_cap = cap;
    }
    p->checks[p->nchecks++] = *c;
    return RK_OK;
}

/*
 * On a loop thread: queues the check for the round's batch. Anywhere else
 * (or out of memory for the pipe): decides at once, done() being called
 * before return.
 */
static rk_status_t cluster_decide_async(rk_store_t *base, const rk_store_req_t *reqs, size_t n,
                                        rk_decision_t *out, void (*done)(void *ctx, rk_status_t st),
                                        void *ctx) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    round_pipe_t *p = current_round_pipe(s);
    if (!p) {
        done(ctx, cluster_decide(base, reqs, n, out));
        return RK_OK;
    }
    if (n == 0 || n > ROUND_ITEMS_MAX || !rk_redis_reqs_valid(reqs, n))
        return RK_ERR;
    return round_queue(
        p, &(round_check_t){.reqs = reqs, .n = n, .out = out, .done = done, .ctx = ctx});
}

/* release() as cluster_decide_async() is to decide(). */
static rk_status_t cluster_release_async(rk_store_t *base, const rk_store_req_t *req,
                                         const char *lease_id, bool *released,
                                         void (*done)(void *ctx, rk_status_t st), void *ctx) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    round_pipe_t *p = current_round_pipe(s);
    if (!p || req->limit.algorithm != RK_ALG_CONCURRENCY) {
        done(ctx, cluster_release(base, req, lease_id, released));
        return RK_OK;
    }
    *released = false;
    if (!lease_id || !rk_redis_req_valid(req, lease_id))
        return RK_ERR;
    return round_queue(p, &(round_check_t){.reqs = req,
                                           .n = 1,
                                           .lease_id = lease_id,
                                           .released = released,
                                           .done = done,
                                           .ctx = ctx});
}

/* DEL of the key on the node owning it. */
static rk_status_t cluster_reset(rk_store_t *base, const char *rule_id, const char *key,
                                 rk_algorithm_t alg) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    char k[RK_REDIS_KEY_BUF];
    size_t klen =
        (unsigned)alg < RK_ALG_COUNT ? rk_redis_build_key(&s->common, rule_id, key, alg, k) : 0;
    if (klen == 0)
        return RK_ERR;
    const char *argv[2] = {"DEL", k};
    size_t lens[2] = {3, klen};
    rk_redis_cluster_cmd_t cmd = {k, klen, 2, argv, lens};
    redisReply *r = NULL;
    rk_status_t st = rk_redis_cluster_run(base, &cmd, 1, &r);
    if (st == RK_OK && r->type == REDIS_REPLY_ERROR)
        st = RK_ERR;
    if (r)
        freeReplyObject(r);
    return st;
}

/*
 * The masters of the slot map: each node serving some slot, once, into
 * masters[] (MAX_NODES) with one of its slots in slots[]; answers how many.
 * Reads every slot: for health, probes and DBSIZE, never a check.
 */
static size_t map_masters(rk_cluster_store_t *s, int *masters, unsigned *slots) {
    bool seen[MAX_NODES] = {false};
    size_t n = 0;
    for (unsigned slot = 0; slot < SLOTS; slot++) {
        int node = slot_node(s, slot);
        if (node < 0 || seen[node])
            continue;
        seen[node] = true;
        masters[n] = node;
        slots[n++] = slot;
    }
    return n;
}

/*
 * Healthy while the map covers every slot and every master serving some is
 * healthy: its breaker closed and its last call answered. A failing master
 * keeps the store unhealthy whatever the calls that miss it do, so health
 * holds steady under load while one master fails; the prober probes the
 * masters meanwhile, so it comes back once every one takes a write. A master
 * that lost its slots (failed over to a replica) no longer counts.
 */
static bool cluster_healthy(rk_store_t *base) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    if (!atomic_load_explicit(&s->map_complete, memory_order_relaxed))
        return false;
    int masters[MAX_NODES];
    unsigned slots[MAX_NODES];
    size_t n = map_masters(s, masters, slots);
    for (size_t i = 0; i < n; i++)
        if (!rk_redis_gate_healthy(&s->nodes[masters[i]].gate))
            return false;
    return n > 0;
}

/*
 * Runs one argument-less command (argv[0]) on every master of the map, each
 * through its breaker; replies[i] (MAX_NODES of them, the caller's to free)
 * as run_commands() gives them, *n how many. RK_ERR when some master gave no
 * reply.
 */
static rk_status_t run_on_masters(rk_cluster_store_t *s, thread_conns_t *t, const char **argv,
                                  const size_t *lens, redisReply **replies, size_t *n) {
    int masters[MAX_NODES];
    unsigned slots[MAX_NODES];
    job_t jobs[MAX_NODES];
    rk_redis_cluster_cmd_t cmds[MAX_NODES];
    *n = map_masters(s, masters, slots);
    for (size_t i = 0; i < *n; i++) {
        jobs[i] =
            (job_t){.slot = slots[i], .node = masters[i], .state = JOB_PENDING, .moved_by = -1};
        cmds[i] = (rk_redis_cluster_cmd_t){NULL, 0, 1, argv, lens};
    }
    return run_commands(s, t, jobs, cmds, *n, replies);
}

/* Sum of DBSIZE over the masters of the map (every key there, not only ratekit's); -1 on failure.
 */
static int64_t cluster_key_count(rk_store_t *base) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    thread_conns_t *t = thread_conns(s);
    if (!t)
        return -1;
    maybe_refresh(s, t, false);
    if (!atomic_load(&s->map_complete))
        return -1;
    redisReply *replies[MAX_NODES];
    static const char *argv[1] = {"DBSIZE"};
    static const size_t lens[1] = {6};
    size_t n;
    rk_status_t st = run_on_masters(s, t, argv, lens, replies, &n);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!replies[i] || replies[i]->type != REDIS_REPLY_INTEGER)
            st = RK_ERR;
        else
            total += replies[i]->integer;
        if (replies[i])
            freeReplyObject(replies[i]);
    }
    return st == RK_OK ? total : -1;
}

/* ---- the health probe ---- */

#define PROBE_NAME_MAX 24
/* Names tried for the masters that need one: a master serving a single slot
 * is found within 16,384 on average, and missed by 2^18 once in ten million. */
#define PROBE_TRIES (1u << 18)

/* Writes the probe name "health-<number>" into name (PROBE_NAME_MAX); the slot of its key. */
static unsigned probe_slot(const rk_cluster_store_t *s, unsigned number, char *name) {
    snprintf(name, PROBE_NAME_MAX, "health-%u", number);
    const rk_store_req_t req = rk_redis_probe_req(name);
    char key[RK_REDIS_KEY_BUF];
    size_t len = rk_redis_build_key(&s->common, req.rule_id, req.key, req.limit.algorithm, key);
    return rk_redis_cluster_keyslot(key, len);
}

/*
 * Gives each of the n masters a probe name (names[i]) whose key lives in a
 * slot it serves, so that its probe reaches it: the name it had while the
 * map still gives that slot to it, else the first free "health-<number>"
 * that lands on it (a few CRC16s per master, once per change of the map);
 * "" when none was found. The prober thread's alone.
 */
static void probe_names(rk_cluster_store_t *s, const int *masters, size_t n,
                        char (*names)[PROBE_NAME_MAX]) {
    size_t want[MAX_NODES] = {0}; /* node -> 1 + its index in masters[], while it needs a name */
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned number = s->probe_number[masters[i]];
        if (number == 0 || slot_node(s, probe_slot(s, number - 1, names[i])) != masters[i]) {
            names[i][0] = '\0';
            want[masters[i]] = i + 1;
            missing++;
        }
    }
    for (unsigned number = 0; missing > 0 && number < PROBE_TRIES; number++) {
        char name[PROBE_NAME_MAX];
        int node = slot_node(s, probe_slot(s, number, name));
        if (node < 0 || want[node] == 0)
            continue;
        memcpy(names[want[node] - 1], name, sizeof name);
        s->probe_number[node] = number + 1;
        want[node] = 0;
        missing--;
    }
}

/*
 * The prober's call (redis_common.h): the slot map fetched again when it is
 * incomplete, then the probe's script call (rk_redis_probe_req), which
 * writes, to every master through its breaker, on the prober thread's own
 * connections. Each call that goes through heals its master's breaker: when
 * every master takes its write, the store is healthy again. Not a PING, which
 * a master refusing writes (OOM) answers: its health would turn back to
 * healthy after every check it fails.
 */
static void cluster_probe(rk_store_t *base) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    thread_conns_t *t = thread_conns(s);
    if (!t)
        return;
    maybe_refresh(s, t, !atomic_load(&s->map_complete));
    if (!atomic_load(&s->map_complete))
        return;
    int masters[MAX_NODES];
    unsigned slots[MAX_NODES];
    char names[MAX_NODES][PROBE_NAME_MAX];
    rk_store_req_t reqs[MAX_NODES];
    rk_decision_t out[MAX_NODES];
    size_t n = map_masters(s, masters, slots), k = 0;
    probe_names(s, masters, n, names);
    for (size_t i = 0; i < n; i++)
        if (names[i][0])
            reqs[k++] = rk_redis_probe_req(names[i]);
    bool unused = false;
    if (k > 0)
        run_scripts(s, reqs, k, RK_REDIS_OP_DECIDE, NULL, out, &unused);
}

/*
 * Frees every thread's connections and the store. No other thread may be
 * using the store (nor exit after having used it) while this runs.
 */
static void cluster_destroy(rk_store_t *base) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    if (!s)
        return;
    rk_redis_prober_stop(&s->prober); /* first: its thread uses a connection record */
    rk_thread_records_destroy(&s->threads);
    pthread_mutex_destroy(&s->nodes_lock);
    rk_redis_common_free(&s->common);
    free(s);
}

static const rk_store_ops_t cluster_ops = {
    .name = "redis-cluster",
    .decide = cluster_decide,
    .decide_async = cluster_decide_async,
    .release = cluster_release,
    .release_async = cluster_release_async,
    .reset = cluster_reset,
    .healthy = cluster_healthy,
    .key_count = cluster_key_count,
    .destroy = cluster_destroy,
};

/* ================================================================ */
/* Creation                                                          */
/* ================================================================ */

static bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Takes a URL seed's credentials as the cluster's: one user and password serve every node. */
static rk_status_t take_credentials(rk_cluster_store_t *s, const rk_redis_url_t *u, size_t nth,
                                    char *err, size_t errlen) {
    if (!u->password[0])
        return RK_OK;
    if (s->password[0] &&
        (strcmp(s->user, u->user) != 0 || strcmp(s->password, u->password) != 0)) {
        rk_redis_set_err(err, errlen,
                         "seed %zu: its credentials differ from an earlier seed's (one user and "
                         "password serve every node)",
                         nth);
        return RK_ERR;
    }
    memcpy(s->user, u->user, sizeof s->user);
    memcpy(s->password, u->password, sizeof s->password);
    return RK_OK;
}

/*
 * Parses a seed in URL form, redis://[user:password@]host:port (as
 * RATEKIT_REDIS_URL, without a database), into the node table; its
 * credentials become the cluster's. Errors never repeat the password.
 */
static rk_status_t add_url_seed(rk_cluster_store_t *s, const char *seed, size_t len, size_t nth,
                                char *err, size_t errlen) {
    char text[1024], why[256];
    rk_redis_url_t u;
    rk_status_t st = RK_ERR;
    if (len >= sizeof text) {
        rk_redis_set_err(err, errlen, "seed %zu: longer than %zu bytes", nth, sizeof text - 1);
        return RK_ERR;
    }
    memcpy(text, seed, len);
    text[len] = '\0';
    if (rk_redis_url_parse(text, &u, why, sizeof why) != RK_OK)
        rk_redis_set_err(err, errlen, "seed %zu: %s", nth, why);
    else if (u.db != 0)
        rk_redis_set_err(err, errlen,
                         "seed %zu: a Redis Cluster has no database but 0 (leave out "
                         "the /db)",
                         nth);
    else if (take_credentials(s, &u, nth, err, errlen) == RK_OK)
        st = node_index(s, u.host, strlen(u.host), u.port) >= 0 ? RK_OK : RK_ERR;
    memset(text, 0, sizeof text);
    memset(&u, 0, sizeof u);
    return st;
}

/*
 * Parses one seed, "host:port", "[ipv6]:port" or a URL (add_url_seed), of
 * len bytes into the node table. RK_ERR with err naming the seed.
 */
static rk_status_t add_seed(rk_cluster_store_t *s, const char *seed, size_t len, size_t nth,
                            char *err, size_t errlen) {
    const char *host = seed, *colon;
    size_t host_len;
    if (len == 0) {
        rk_redis_set_err(err, errlen, "seed %zu is empty (host:port,host:port,... expected)", nth);
        return RK_ERR;
    }
    if (len >= 3 && memmem(seed, len, "://", 3))
        return add_url_seed(s, seed, len, nth, err, errlen);
    if (memchr(seed, '@', len)) { /* not repeated: it may hold a password */
        rk_redis_set_err(
            err, errlen,
            "seed %zu: credentials go in a URL seed, redis://[user]:password@host:port", nth);
        return RK_ERR;
    }
    if (seed[0] == '[') {
        const char *close = memchr(seed, ']', len);
        if (!close || close + 1 >= seed + len || close[1] != ':' || close == seed + 1) {
            rk_redis_set_err(err, errlen, "seed %zu \"%.*s\": [ipv6]:port expected", nth, (int)len,
                             seed);
            return RK_ERR;
        }
        host = seed + 1;
        host_len = (size_t)(close - host);
        for (size_t i = 0; i < host_len; i++)
            if (!(host_char(host[i]) || host[i] == ':')) {
                rk_redis_set_err(err, errlen, "seed %zu \"%.*s\": bad IPv6 address", nth, (int)len,
                                 seed);
                return RK_ERR;
            }
        colon = close + 1;
    } else {
        colon = memchr(seed, ':', len);
        if (!colon || memchr(colon + 1, ':', (size_t)(seed + len - colon - 1))) {
            rk_redis_set_err(err, errlen,
                             "seed %zu \"%.*s\": host:port expected (an IPv6 address goes in "
                             "brackets)",
                             nth, (int)len, seed);
            return RK_ERR;
        }
        host_len = (size_t)(colon - seed);
        for (size_t i = 0; i < host_len; i++)
            if (!host_char(host[i])) {
                rk_redis_set_err(err, errlen, "seed %zu \"%.*s\": bad host name", nth, (int)len,
                                 seed);
                return RK_ERR;
            }
    }
    if (host_len == 0 || host_len > HOST_MAX) {
        rk_redis_set_err(err, errlen, "seed %zu \"%.*s\": the host is empty or too long", nth,
                         (int)len, seed);
        return RK_ERR;
    }
    const char *digits = colon + 1, *end = seed + len;
    long port = 0;
    bool ok = digits < end && end - digits <= 5;
    for (const char *q = digits; ok && q < end; q++) {
        ok = *q >= '0' && *q <= '9';
        port = port * 10 + (*q - '0');
    }
    if (!ok || port < 1 || port > 65535) {
        rk_redis_set_err(err, errlen, "seed %zu \"%.*s\": the port must be 1..65535", nth, (int)len,
                         seed);
        return RK_ERR;
    }
    node_index(s, host, host_len, (int)port);
    return RK_OK;
}

/* Parses the whole seed list into the node table. */
static rk_status_t add_seeds(rk_cluster_store_t *s, const char *list, char *err, size_t errlen) {
    if (!list || !list[0]) {
        rk_redis_set_err(err, errlen, "no seed node (host:port,host:port,... expected)");
        return RK_ERR;
    }
    size_t nth = 0;
    for (const char *p = list;; nth++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (nth >= MAX_SEEDS) {
            rk_redis_set_err(err, errlen, "more than %d seed nodes", MAX_SEEDS);
            return RK_ERR;
        }
        if (add_seed(s, p, len, nth + 1, err, errlen) != RK_OK)
            return RK_ERR;
        if (!comma)
            break;
        p = comma + 1;
    }
    s->seed_count = atomic_load(&s->node_count);
    return RK_OK;
}

rk_store_t *rk_redis_cluster_store_new(const rk_redis_cluster_config_t *cfg, char *err,
                                       size_t errlen) {
    rk_cluster_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        rk_redis_set_err(err, errlen, "redis cluster: out of memory");
        return NULL;
    }
    s->base.ops = &cluster_ops;
    pthread_mutex_init(&s->nodes_lock, NULL);
    atomic_init(&s->node_count, 0);
    for (size_t i = 0; i < SLOTS; i++)
        atomic_init(&s->slot_owner[i], NO_NODE);
    atomic_init(&s->refreshed_ms, 0);
    atomic_init(&s->refresh_due, true);
    atomic_init(&s->refreshing, false);
    atomic_init(&s->map_complete, false);
    atomic_init(&s->refresh_cursor, 0);
    atomic_init(&s->auth_logged_ms, 0);
    if (rk_redis_common_init(&s->common, "redis cluster", cfg->scripts, false, cfg->key_prefix,
                             cfg->connect_timeout_ms, cfg->timeout_ms, err, errlen) != RK_OK ||
        add_seeds(s, cfg->seeds, err, errlen) != RK_OK) {
        pthread_mutex_destroy(&s->nodes_lock);
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    if (rk_thread_records_init(&s->threads, sizeof(thread_conns_t), conns_record_drop) != RK_OK) {
        rk_redis_set_err(err, errlen, "redis cluster: no thread-local key left");
        pthread_mutex_destroy(&s->nodes_lock);
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    rk_redis_ignore_sigpipe();
    if (rk_redis_prober_start(&s->prober, &s->base, cluster_probe, "redis cluster", err, errlen) !=
        RK_OK) {
        rk_thread_records_destroy(&s->threads);
        pthread_mutex_destroy(&s->nodes_lock);
        rk_redis_common_free(&s->common);
        free(s);
        return NULL;
    }
    return &s->base;
}

/*
 * Fetches the slot map now, whatever the breakers say: for start-up, where
 * the caller decides what an unreachable cluster means. RK_ERR when no node
 * answered or the cluster does not serve every slot.
 */
rk_status_t rk_redis_cluster_store_ping(rk_store_t *base, char *err, size_t errlen) {
    rk_cluster_store_t *s = (rk_cluster_store_t *)base;
    thread_conns_t *t = thread_conns(s);
    if (!t) {
        rk_redis_set_err(err, errlen, "redis cluster: out of memory");
        return RK_ERR;
    }
    atomic_store(&s->refreshed_ms, rk_mono_ms());
    atomic_store(&s->refresh_due, false);
    if (refresh_map(s, t, err, errlen) != RK_OK) {
        atomic_store(&s->refresh_due, true);
        return RK_ERR;
    }
    return atomic_load(&s->map_complete) ? RK_OK : RK_ERR;
}
