/*
 * redis_cluster.c — see redis_cluster.h.
 */
#include "redis_cluster.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16384

/* Whether a loopback TCP port can be bound now. */
static bool port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A port P with P and P + 10000 (the cluster bus) free, P not yet given to c. */
static int cluster_port(const rk_test_cluster_t *c) {
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 1000; tries++) {
        int p = 20000 + (int)(rand_r(&seed) % 25000);
        bool taken = false;
        for (size_t i = 0; i < c->count; i++)
            taken |= c->nodes[i].port == p;
        if (!taken && port_free(p) && port_free(p + 10000))
            return p;
    }
    cr_fatal("no free port pair for a cluster node");
    return -1;
}

static redisContext *connect_port(int port) {
    struct timeval tv = {1, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (ctx && !ctx->err)
        redisSetTimeout(ctx, tv);
    return ctx;
}

redisContext *rk_test_cluster_connect(const rk_test_cluster_t *c, size_t i) {
    redisContext *ctx = connect_port(c->nodes[i].port);
    if (!ctx || ctx->err)
        cr_fatal("cannot connect to cluster node %d", c->nodes[i].port);
    return ctx;
}

redisReply *rk_test_cluster_cmd(const rk_test_cluster_t *c, size_t i, const char *fmt, ...) {
    redisContext *ctx = rk_test_cluster_connect(c, i);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (!r)
        cr_fatal("node %d: %s: %s", c->nodes[i].port, fmt, ctx->errstr);
    redisFree(ctx);
    return r;
}

/* The reply must be a status or a string (OK, an id...). */
static void cmd_ok(const rk_test_cluster_t *c, size_t i, const char *fmt, ...) {
    redisContext *ctx = rk_test_cluster_connect(c, i);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR)
        cr_fatal("node %d: %s: %s", c->nodes[i].port, fmt, r ? r->str : ctx->errstr);
    freeReplyObject(r);
    redisFree(ctx);
}

long long rk_test_cluster_dbsize(const rk_test_cluster_t *c, size_t i) {
    redisReply *r = rk_test_cluster_cmd(c, i, "DBSIZE");
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* Starts node i's redis-server on a port pair found free. */
static void spawn_node(rk_test_cluster_t *c, size_t i) {
    rk_test_redis_t *r = &c->nodes[i];
    r->port = cluster_port(c);
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[] = {"redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          r->dir,
                          "--cluster-enabled",
                          "yes",
                          "--cluster-config-file",
                          "nodes.conf",
                          "--cluster-node-timeout",
                          "1000",
                          "--loglevel",
                          "warning",
                          NULL};
    r->pid = fork();
    if (r->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
}

static void start_node(rk_test_cluster_t *c) {
    rk_test_redis_t *r = &c->nodes[c->count];
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/rk-cluster-XXXXXX");
    if (!mkdtemp(r->dir))
        cr_fatal("mkdtemp failed");
    c->count++;
    spawn_node(c, c->count - 1);
}

/*
 * Waits until node i is up and is ours (2 s at most). A port pair found
 * free may be taken before the node binds it (by another test's server, or
 * as a client's ephemeral port): the node then exits, and is started again
 * on another pair, 5 times at most.
 */
static void wait_started(rk_test_cluster_t *c, size_t i) {
    rk_test_redis_t *r = &c->nodes[i];
    for (int attempt = 0; attempt < 5; attempt++) {
        for (int t = 0; t < 200; t++) {
            if (rk_test_redis_answers_as(r->port, r->pid, NULL))
                return;
            if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
                break;
            usleep(10000);
        }
        if (kill(r->pid, 0) == 0)
            break; /* running, but not answering */
        spawn_node(c, i);
    }
    cr_fatal("cluster node %d did not start", r->port);
}

/* Whether node i's CLUSTER INFO holds text. */
static bool info_has(const rk_test_cluster_t *c, size_t i, const char *text) {
    redisReply *r = rk_test_cluster_cmd(c, i, "CLUSTER INFO");
    bool has = r->type == REDIS_REPLY_STRING && strstr(r->str, text) != NULL;
    freeReplyObject(r);
    return has;
}

/* Whether master i has `replicas` replicas online. */
static bool has_replicas(const rk_test_cluster_t *c, size_t i, size_t replicas) {
    redisReply *r = rk_test_cluster_cmd(c, i, "INFO replication");
    char want[64];
    snprintf(want, sizeof want, "connected_slaves:%zu", replicas);
    bool has = r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL;
    freeReplyObject(r);
    return has;
}

void rk_test_cluster_start(rk_test_cluster_t *c, size_t masters, size_t replicas) {
    memset(c, 0, sizeof *c);
    size_t total = masters + masters * replicas;
    if (masters == 0 || total > RK_TEST_CLUSTER_MAX)
        cr_fatal("bad cluster shape");
    c->masters = masters;
    for (size_t i = 0; i < total; i++)
        start_node(c);
    size_t off = 0;
    for (size_t i = 0; i < total; i++) {
        wait_started(c, i);
        redisReply *r = rk_test_cluster_cmd(c, i, "CLUSTER MYID");
        snprintf(c->id[i], sizeof c->id[i], "%s", r->str);
        freeReplyObject(r);
        off += (size_t)snprintf(c->seeds + off, sizeof c->seeds - off, "%s127.0.0.1:%d",
                                i ? "," : "", c->nodes[i].port);
    }
    for (size_t m = 0; m < masters; m++)
        cmd_ok(c, m, "CLUSTER ADDSLOTSRANGE %d %d", (int)(m * SLOTS / masters),
               (int)((m + 1) * SLOTS / masters - 1));
    for (size_t i = 1; i < total; i++)
        cmd_ok(c, i, "CLUSTER MEET 127.0.0.1 %d", c->nodes[0].port);
    /* Every node must know every other before a replica can name its master. */
    char known[48];
    snprintf(known, sizeof known, "cluster_known_nodes:%zu\r", total);
    for (int t = 0; t < 500; t++) {
        bool all = true;
        for (size_t i = 0; i < total && all; i++)
            all = info_has(c, i, known);
        if (all)
            break;
        if (t == 499)
            cr_fatal("cluster nodes did not meet");
        usleep(10000);
    }
    for (size_t i = masters; i < total; i++)
        cmd_ok(c, i, "CLUSTER REPLICATE %s", c->id[(i - masters) % masters]);
    for (int t = 0; t < 1000; t++) {
        bool all = true;
        for (size_t i = 0; i < total && all; i++)
            all = info_has(c, i, "cluster_state:ok");
        for (size_t m = 0; m < masters && all && replicas; m++)
            all = has_replicas(c, m, replicas);
        if (all)
            return;
        usleep(10000);
    }
    rk_test_cluster_stop(c);
    cr_fatal("the cluster did not reach cluster_state:ok");
}

void rk_test_cluster_stop(rk_test_cluster_t *c) {
    for (size_t i = 0; i < c->count; i++)
        rk_test_redis_stop(&c->nodes[i]);
    c->count = 0;
}

int rk_test_cluster_owner(const rk_test_cluster_t *c, unsigned slot) {
    redisReply *r = rk_test_cluster_cmd(c, 0, "CLUSTER SLOTS");
    int owner = -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *range = r->element[i];
        if ((unsigned)range->element[0]->integer <= slot &&
            slot <= (unsigned)range->element[1]->integer) {
            long long port = range->element[2]->element[1]->integer;
            for (size_t n = 0; n < c->count; n++)
                if (c->nodes[n].port == port)
                    owner = (int)n;
        }
    }
    freeReplyObject(r);
    return owner;
}
