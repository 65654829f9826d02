/*
 * cluster.h — the cluster-wide statistics in Redis.
 *
 * Each instance writes, once a second, its own counts of the second that
 * ended (and of the seconds it could not write while Redis was away):
 *   HSET    <prefix>:stats:{<epoch_s>} <rule>:<field>@<instance> n  (TTL 16 min)
 *           (<rule> "_checks": the checks, each request once; no rule id starts with "_")
 *   ZINCRBY <prefix>:denied:{<epoch_min>} n "<rule>\t<key>"  (TTL 17 min)
 *   ZINCRBY <prefix>:denied:{<epoch_min>}:<rule> n "<key>"   (the same, per rule)
 *   ZADD    <prefix>:instances <now_ms> <instance id>        (live: seen in 5 s; TTL 60 s)
 * and reads the sums back, so that every instance answers for all. The
 * counts are set, not added: a second written again after a write that
 * timed out (and may have landed) is not counted twice.
 *
 * Every command names one key, so that on a Redis Cluster each goes to the
 * master owning that key: the seconds and minutes carry their time as a hash
 * tag (the per-rule denied set shares its minute's slot), and reads of
 * several seconds or minutes are one command per key, grouped by node.
 *
 * One rk_cluster_t talks either to one Redis, through one hiredis connection
 * with timeouts used under its own mutex (reconnected at most once a second
 * after any error), or to a Redis Cluster, through the cluster store's
 * connections of the calling thread (rk_redis_cluster_run).
 */
#ifndef RK_STATS_CLUSTER_H
#define RK_STATS_CLUSTER_H

#include "../config.h"
#include "../store/store.h"
#include "ring.h"
#include "topk.h"

#define RK_CLUSTER_STATS_TTL_S 960
#define RK_CLUSTER_DENIED_TTL_S 1020
#define RK_CLUSTER_LIVE_MS 5000

typedef struct rk_cluster rk_cluster_t;

/*
 * Statistics in the Redis Cluster of cluster_store (made by
 * rk_redis_cluster_store_new, borrowed: it must outlive the result), or,
 * when cluster_store is NULL, a connection to cfg->redis_url (connected
 * lazily). NULL with err when the URL is bad.
 */
rk_cluster_t *rk_cluster_new(const rk_config_t *cfg, rk_store_t *cluster_store, char *err,
                             size_t errlen);
void rk_cluster_free(rk_cluster_t *c);

/* This instance's counts of one second (entries by slot, see rk_stats_slot_rule). */
typedef struct {
    int64_t t;
    const rk_ring_entry_t *entries;
    size_t n;
} rk_cluster_second_t;

/*
 * Sets the seconds' counts of instance, adds the denied keys of the last
 * second (at minute denied_minute) to Redis, and marks instance live at
 * now_ms. One pipeline (per node on a cluster).
 */
rk_status_t rk_cluster_publish(rk_cluster_t *c, const char *instance, int64_t now_ms,
                               const rk_cluster_second_t *seconds, size_t nseconds,
                               int64_t denied_minute, const rk_topk_t *denied);

/*
 * Reads seconds from..to and calls put for each (entries by slot), or none
 * when any read failed. One pipeline (per node on a cluster).
 */
rk_status_t rk_cluster_fetch(rk_cluster_t *c, int64_t from, int64_t to,
                             void (*put)(int64_t t, const rk_ring_entry_t *entries, size_t n));

/* Removes instance from the live ones (a clean stop: the others count it no more). */
rk_status_t rk_cluster_leave(rk_cluster_t *c, const char *instance);

/* Instances seen in the last RK_CLUSTER_LIVE_MS before now_ms; -1 on error. */
int64_t rk_cluster_instances(rk_cluster_t *c, int64_t now_ms);

/*
 * Adds the (up to 1000) most denied keys of each minute from_min..to_min
 * of one rule (NULL: all rules) into acc, as "rule\tkey".
 */
rk_status_t rk_cluster_top(rk_cluster_t *c, const char *rule, int64_t from_min, int64_t to_min,
                           rk_topk_t *acc);

#endif
