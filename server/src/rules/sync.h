/*
 * sync.h — hot reload across instances that share only Redis (each with its
 * own SQLite file).
 *
 * After this process commits a change of the rules (or of the API tokens),
 * the whole ruleset (the export document, plus the tokens as stored: salted
 * hashes, never a secret) is written to Redis as <prefix>:ruleset, carrying a
 * version that Redis itself increments, and that version is PUBLISHed on the
 * channel of the same name. Every instance listens on the channel (and reads
 * the key every few seconds as a safety net) and, when the version is newer
 * than the last one it published or applied, imports the document into its
 * own SQLite file through the import path (all or nothing, actor "sync";
 * the tokens replaced as a set, so a revocation travels too), so
 * that it also starts with the last known rules when Redis is down. An
 * import made by the sync is never published again. The same works on a
 * Redis Cluster: the key lives on the master owning its slot, and a PUBLISH
 * reaches the subscribers of every node.
 */
#ifndef RK_RULES_SYNC_H
#define RK_RULES_SYNC_H

#include "../common.h"
#include "../store/store.h"

#define RK_SYNC_POLL_MS 3000 /* the safety-net read of the key */
#define RK_SYNC_BACKOFF_MAX_MS 2000

/*
 * Starts the subscriber and the worker threads for the Redis of redis_url;
 * keys are "<key_prefix>:ruleset". RK_ERR only when the URL is invalid or a
 * thread cannot start (an unreachable Redis is retried with backoff).
 */
rk_status_t rk_rules_sync_start(const char *redis_url, const char *key_prefix);

/*
 * The same on the Redis Cluster of a store made by rk_redis_cluster_store_new
 * (borrowed: it must outlive rk_rules_sync_stop). RK_ERR only when a thread
 * cannot start.
 */
rk_status_t rk_rules_sync_start_cluster(rk_store_t *cluster, const char *key_prefix);
void rk_rules_sync_stop(void);

/*
 * Called after every commit of this process (snapshot.c, writer's lock
 * held): marks the ruleset (its rules and overrides) to be published,
 * unless the commit is the sync's own import. Never blocks.
 */
void rk_rules_sync_committed(int64_t version);

#endif
