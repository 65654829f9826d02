/*
 * redis_cluster.h — a real Redis Cluster on loopback for the store suites:
 * redis-server processes started with --cluster-enabled, slots split evenly
 * over the masters, replicas attached, stopped by PID.
 */
#ifndef RK_TEST_REDIS_CLUSTER_H
#define RK_TEST_REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "redis_server.h"

#define RK_TEST_CLUSTER_MAX 12

typedef struct {
    size_t count;   /* nodes started */
    size_t masters; /* nodes[0..masters) own the slots */
    rk_test_redis_t nodes[RK_TEST_CLUSTER_MAX];
    char id[RK_TEST_CLUSTER_MAX][41];     /* CLUSTER MYID of each node */
    char seeds[RK_TEST_CLUSTER_MAX * 24]; /* "127.0.0.1:P,..." of every node */
} rk_test_cluster_t;

/*
 * Starts masters + masters * replicas nodes (cluster-node-timeout 1000 ms),
 * assigns the slots evenly to the masters, attaches the replicas, and waits
 * until every node says cluster_state:ok. Aborts the test on failure.
 */
void rk_test_cluster_start(rk_test_cluster_t *c, size_t masters, size_t replicas);

/* SIGKILLs every node still running and removes their directories. */
void rk_test_cluster_stop(rk_test_cluster_t *c);

/* A new connection to node i (the caller's). */
redisContext *rk_test_cluster_connect(const rk_test_cluster_t *c, size_t i);

/* The index of the node that owns slot (per node 0's view), or -1. */
int rk_test_cluster_owner(const rk_test_cluster_t *c, unsigned slot);

/* Runs a command on node i and returns its reply (the caller's); aborts on no reply. */
redisReply *rk_test_cluster_cmd(const rk_test_cluster_t *c, size_t i, const char *fmt, ...);

/* DBSIZE of node i. */
long long rk_test_cluster_dbsize(const rk_test_cluster_t *c, size_t i);

#endif
