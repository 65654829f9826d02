/*
 * deny_cache.h — the local deny cache: "(rule, key) is denied until T".
 *
 * When the store denies a cost-1 check with retry_after_ms = R, nothing can
 * turn that denial into an allowance before R has passed (a denied request
 * consumes nothing, and every other request of the key is denied too), for
 * every algorithm but concurrency (a release frees a slot early) and a
 * shaping leaky bucket (it answers delays, not denials). So, in front of a
 * remote store, the check path remembers the denial and answers the key's
 * further cost-1 checks itself until then, without asking the store: a key
 * under attack costs Redis one call per retry_after_ms, not one per
 * request. (The embedded store answers as fast without it.)
 *
 * The table is per process, fixed in size (slots are overwritten, never
 * allocated), split into shards each under its own mutex held only for a
 * copy. An entry matches only the same rule id, rule version, limit
 * (algorithm, limit, window, burst: plans and overrides change it) and
 * normalised key. DELETE /api/v1/counters forgets the key
 * (rk_deny_cache_forget); a rule change gives the rule a new version.
 *
 * What it cannot see: a reset of the key's counters made through another
 * ratekitd sharing the Redis store; that instance answers at once, this one
 * at the end of the denial it remembered (at most retry_after_ms).
 */
#ifndef RK_DENY_CACHE_H
#define RK_DENY_CACHE_H

#include "../rules/rules.h"
#include "../store/store.h"

/* Slots of the table (a power of two). */
#define RK_DENY_CACHE_SLOTS 8192

/* Whether a decision of this limit and cost may be remembered and answered locally. */
bool rk_deny_cache_applies(const rk_limit_t *limit, int64_t cost);

/*
 * Looks up a denial of (rule, limit, key) live at mono_ms (rk_mono_ms()).
 * On a hit fills *out with the denial as it stands at mono_ms
 * (retry_after_ms and reset_ms counted down) and answers true.
 */
bool rk_deny_cache_lookup(const rk_rule_t *rule, const rk_limit_t *limit, const char *key,
                          int64_t mono_ms, rk_decision_t *out);

/*
 * Remembers a denial decided by the store for a request sent at
 * sent_mono_ms (taken before the store was asked, so that the denial is
 * never remembered past its true end). Does nothing unless d is a denial
 * with retry_after_ms > 0.
 */
void rk_deny_cache_remember(const rk_rule_t *rule, const rk_limit_t *limit, const char *key,
                            int64_t sent_mono_ms, const rk_decision_t *d);

/* Forgets any denial remembered for (rule_id, key) (counters reset). */
void rk_deny_cache_forget(const char *rule_id, const char *key);

/* Forgets every denial (for tests). */
void rk_deny_cache_clear(void);

#endif
