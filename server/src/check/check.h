/*
 * check.h — deciding a set of (rule, key, cost) at once: one round trip to
 * the store for all of them, the fail mode applied when the store fails,
 * rule modes (enforce, shadow, off) applied, and the one answer composed.
 */
#ifndef RK_CHECK_H
#define RK_CHECK_H

#include "../rules/rules.h"
#include "../store/store.h"

/* The most (rule, key) pairs one request may decide. */
#define RK_CHECK_MAX_ITEMS 64

typedef struct {
    const rk_rule_t *rule;
    rk_limit_t limit;               /* the rule's, its key's override, or its plan's */
    bool overridden;                /* limit is this key's override (beats a plan) */
    char key[RK_STORE_KEY_MAX + 1]; /* normalised */
    int64_t cost;
    char lease_id[RK_LEASE_ID_LEN + 1]; /* concurrency rules: the lease created */
    /* Concurrency rules: asks whether cost units are free and takes none
     * (no lease: forward-auth cannot release one); lease_id is "". */
    bool peek;
    rk_decision_t decision;
    /* Set when the store failed and the rule's fail mode decided. */
    bool failed_over;
    rk_fail_mode_t fail_mode_used;
    /* A store took the cost (allowed, cost > 0, not a peek): the store, or
     * the in-memory one when failed_over. What rk_check_refund gives back. */
    bool counted;
    /* One of several rules of one request (set by rk_context_items): a
     * refund may follow, so the store answers the time it decided at. */
    bool refundable;
    /* Decided without the store: switched off, or a remembered denial. */
    bool settled;
    /* The first item of its check (the rules of one request are one check,
     * each entry of a batch is one): the latency histogram counts checks by it. */
    bool opens_check;
} rk_check_item_t;

/* Sets the rule, its limit, the normalised key, the cost and (concurrency) a lease id. */
rk_status_t rk_check_item_init(rk_check_item_t *it, const rk_rule_t *rule, const char *key,
                               size_t key_len, int64_t cost);

/*
 * Decides every item (rule, key and cost set by the caller) with now_ms
 * (-1: the store's clock). Never fails: a store failure is answered by the
 * fail mode of each rule.
 */
void rk_check_run(rk_check_item_t *items, size_t n, int64_t now_ms);

/* ---- deciding without waiting for the store ---- */

/* Most items an asynchronous check may have. */
#define RK_CHECK_ASYNC_MAX 4

/* An asynchronous check in progress; owned by the caller, opaque. */
typedef struct {
    rk_check_item_t *items;
    size_t n, m; /* items, and those the store decides */
    rk_store_req_t reqs[RK_CHECK_ASYNC_MAX];
    rk_decision_t out[RK_CHECK_ASYNC_MAX];
    size_t map[RK_CHECK_ASYNC_MAX];
    int64_t sent_mono_ms;
    int64_t started_ns;
    void (*done)(void *ctx);
    void *ctx;
} rk_check_job_t;

/* Whether the store answers checks asynchronously (rk_check_prepare, rk_check_submit). */
bool rk_check_async_available(void);

/*
 * Before an asynchronous check, on the live clock: decides what needs no
 * store (rules switched off, remembered denials) for all the items of a
 * request, which may make several jobs. When a remembered denial of an
 * enforcing rule denies a request of several rules, the store only looks
 * at the others: nothing is counted, nothing has to be given back.
 * Answers the monotonic time (ns) it read, which the jobs start at.
 */
int64_t rk_check_recall(rk_check_item_t *items, size_t n);

/*
 * First half of an asynchronous check of items (n <= RK_CHECK_ASYNC_MAX;
 * after rk_check_recall of the request's items, started_ns its answer).
 * true: every item is decided and counted, as by rk_check_run(); answer at
 * once. false: the store must be asked, with rk_check_submit().
 */
bool rk_check_prepare(rk_check_job_t *job, rk_check_item_t *items, size_t n, int64_t started_ns);

/*
 * Second half: asks the store. done(ctx) is called once every item is
 * decided (fail modes applied) and counted: from the store's thread, or from
 * this one, before this returns, when the store could not take the check.
 * job and its items must live until then.
 */
void rk_check_submit(rk_check_job_t *job, void (*done)(void *ctx), void *ctx);

/*
 * A request the items decided is denied (rk_check_allowed false): gives
 * back what each rule that allowed it consumed (shadow ones too), as if
 * the request had never come, and ends the leases it took. Nothing to do,
 * and nothing done, for an allowed request or a single rule. On the
 * embedded store it is done before this returns (no allocation); on Redis
 * it is queued for the event loop's next round, its reply never waited
 * for, a failure counted (rk_check_refunds_failed) and logged now and then.
 * Call it once per request, when every item is decided: each item given
 * back answers what remains with its cost back.
 */
void rk_check_refund(rk_check_item_t *items, size_t n);

/* Refunds sent to a store, and those it failed (for metrics). */
uint64_t rk_check_refunds(void);
uint64_t rk_check_refunds_failed(void);

/* Whether the request passes: no enforcing rule denied it. */
bool rk_check_allowed(const rk_check_item_t *items, size_t n);

/*
 * The item the answer's headers describe: among enforcing denials the one
 * that frees last; otherwise the enforcing rule with the least remaining
 * share; with no enforcing rule, the rule with the least remaining share
 * (a shadow rule never outranks an enforcing one: clients would back off
 * for a rule on trial). -1 when n is 0.
 */
int rk_check_headline(const rk_check_item_t *items, size_t n);

#endif
