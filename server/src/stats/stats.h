/*
 * stats.h — live counts of the decisions, per rule and per second.
 *
 * The check path calls rk_stats_count() once per rk_check_run(): a few
 * relaxed stores into this thread's own counters, no lock, no allocation
 * (past the first call of a thread). A background thread folds them once
 * a second into a ring of the last 15 minutes, publishes this instance's
 * share to Redis when the store is Redis (so that any instance answers
 * for the cluster), sends the `stats` event of the stream and the
 * `rule` events, and keeps the most denied keys.
 *
 * Each decided item counts once, in exactly one of: allowed, denied (an
 * enforcing rule denied), shadow_denied (a shadow rule would have denied),
 * errors (the store failed and the fail mode decided). Rules switched off
 * are not counted.
 *
 * Those are rule decisions: a request three rules cover counts three times.
 * The checks are counted apart, each once (rk_stats_count_checks): the
 * requests asked about (a direct check, a batch entry, a request's context,
 * a forward-auth request) that a rule decided or the lists answered, in
 * exactly one of allowed (it passed), denied (an enforcing rule the store
 * answered refused it, or the denylist did) and errors (neither, and the
 * store failed for one of its rules: the fail modes gave the answer, open
 * or closed). A request no rule covers is not a check. They travel as the
 * pseudo-rule "_checks" (RK_RING_CHECKS), outside the totals and the rules. Rules are told apart by
 * id, in at most RK_STATS_MAX_RULES slots; a rule that finds none free counts under
 * "_other". The slot of a rule deleted RK_RULES_GRACE_MS ago is freed once
 * its counts have left the 15 minutes, or sooner when new rules need it
 * (keeping SLOTS_KEPT_FREE free; the deleted rule's own rows go, the totals
 * stay); a rule under "_other" gets the next free slot.
 */
#ifndef RK_STATS_H
#define RK_STATS_H

#include "../check/check.h"
#include "ring.h"

#define RK_STATS_MAX_RULES 1024
#define RK_STATS_OTHER RK_STATS_MAX_RULES /* the slot of the ids past the bound */
#define RK_STATS_SLOTS (RK_STATS_MAX_RULES + 1)
#define RK_STATS_OTHER_NAME "_other"
#define RK_STATS_CHECKS_NAME "_checks" /* no rule id: ids start with [a-z0-9] */
#define RK_STATS_HIST_BUCKETS 13       /* finite bounds of the check-duration histogram */

typedef enum {
    RK_STAT_ALLOWED = 0,
    RK_STAT_DENIED,
    RK_STAT_SHADOW_DENIED,
    RK_STAT_ERRORS
} rk_stat_field_t;

/* "allowed", "denied", "shadow_denied", "errors" */
extern const char *const rk_stat_field_names[RK_STAT_FIELDS];
/* Upper bounds of the histogram buckets, in nanoseconds (+Inf follows). */
extern const int64_t rk_stats_hist_bounds_ns[RK_STATS_HIST_BUCKETS];

/*
 * Hot path: counts the decided items of a group that took duration_ns, and
 * one sample of that duration per check the group holds (opens_check).
 */
void rk_stats_count(const rk_check_item_t *items, size_t n, int64_t duration_ns);

/*
 * Hot path: counts the checks of a request once every item of it is decided
 * (its jobs may have been decided apart): each run of items from one that
 * opens_check is one check. Lock-free, no allocation.
 */
void rk_stats_count_checks(const rk_check_item_t *items, size_t n);

/* Hot path: counts n checks the lists answered before any rule (denylist: denied). */
void rk_stats_count_listed(bool denied, size_t n);

/*
 * Starts the background thread (after the stores and the rules are open)
 * and listens to rule changes. Cluster-wide when rk_rt.store is Redis.
 */
rk_status_t rk_stats_start(void);
/* Ends every event stream and stops the thread; call before the listeners stop. */
void rk_stats_stop(void);

/* Live instances sharing the store (seen in the last 5 s); 1 on the embedded store. */
int64_t rk_stats_instances(void);
/* This process's name in the cluster and in the denial log: host-pid-random. */
const char *rk_stats_instance_id(void);

/* ---- reads, for the admin API and the metrics ---- */

typedef struct {
    char rule[RK_RULE_ID_MAX + 1];
    uint64_t n[RK_STAT_FIELDS];
} rk_stats_rule_t;

/*
 * Sums the seconds from..to (epoch s, inclusive) of the cluster-wide view
 * (the local one on the embedded store): totals, the checks, and one row per rule that
 * had traffic (*rules malloc'd, the caller frees; sorted by rule id).
 */
rk_status_t rk_stats_window(int64_t from, int64_t to, uint64_t totals[RK_STAT_FIELDS],
                            uint64_t checks[RK_STAT_FIELDS], rk_stats_rule_t **rules,
                            size_t *nrules);

/*
 * The series of one rule (NULL: the totals) from..to, step seconds a
 * point: out[i] sums [from + i*step, from + (i+1)*step - 1] (clipped at to).
 * out holds (to - from) / step + 1 rows; so does checks (when not NULL), the
 * check counts of the same seconds. false (out zeros) when the rule
 * has no counts of its own: they are under "_other".
 */
bool rk_stats_series(const char *rule, int64_t from, int64_t to, int64_t step,
                     uint64_t (*out)[RK_STAT_FIELDS], uint64_t (*checks)[RK_STAT_FIELDS]);

typedef struct {
    char rule[RK_RULE_ID_MAX + 1];
    char key[RK_STORE_KEY_MAX + 1];
    uint64_t denied;
} rk_stats_top_t;

/*
 * The keys denied most (by enforcing rules: not shadow would-denies) in the last
 * window_s seconds, of one rule (NULL: all rules). Denials are kept per
 * minute: the window takes in the whole minute it begins in (up to 59 s
 * more), never an older one;
 * at most k rows into out, largest first. RK_ERR when Redis did not answer.
 */
rk_status_t rk_stats_top(const char *rule, int64_t window_s, rk_stats_top_t *out, size_t k,
                         size_t *n);

/* Cumulative counts since start, per slot (RK_STATS_SLOTS rows), and the histogram. */
typedef struct {
    uint64_t buckets[RK_STATS_HIST_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    uint64_t count;
    uint64_t sum_ns;
    uint64_t store_errors; /* checks whose store failed */
} rk_stats_latency_t;
void rk_stats_cumulative(uint64_t (*per_slot)[RK_STAT_FIELDS], rk_stats_latency_t *lat);
/* Cumulative check counts since start (shadow_denied unused). */
void rk_stats_checks_cumulative(uint64_t checks[RK_STAT_FIELDS]);

/* The rule id of a slot ("_other" for RK_STATS_OTHER), NULL when unused. */
const char *rk_stats_slot_rule(size_t slot);
/*
 * The slot of a rule id, taking a new one when it has none (lock-free);
 * RK_RING_CHECKS for "_checks", RK_STATS_OTHER for "_other".
 */
size_t rk_stats_slot(const char *rule_id, size_t len);
/* The cumulative count of field the slot's earlier owners left (subtract it). */
uint64_t rk_stats_slot_base(size_t slot, int field);
/*
 * The statistics thread's pass over the slots, once a second (exposed for
 * the tests): live(id, ctx) tells whether a rule is in the ruleset; frees
 * the slots of the rules gone since RK_RULES_GRACE_MS before now_ms (epoch
 * ms) as above, and gives rules under "_other" the free ones.
 */
void rk_stats_slots_tend(bool (*live)(const char *id, void *ctx), void *ctx, int64_t now_ms);

#endif
