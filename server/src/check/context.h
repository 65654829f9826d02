/*
 * context.h — from a request as a gateway or an application describes it
 * (method, target, host, peer address, headers) to the checks it needs:
 * every rule whose match covers it, each with the key its chain resolves
 * to and the limit of the client's plan. The plan is the verified JWT's
 * "plan" claim when JWT verification is configured, X-Plan otherwise.
 */
#ifndef RK_CONTEXT_H
#define RK_CONTEXT_H

#include "../lists/lists.h"
#include "check.h"
#include "client_ip.h"

typedef struct {
    const char *method; /* "GET"; NULL or "" means GET */
    const char *target; /* path with optional query, as sent */
    size_t target_len;
    const char *host; /* may carry a port; NULL when unknown */
    rk_ip_t peer;     /* who sent the request to the caller */
    /* Looks a request header up by name (case-insensitive); NULL when absent. */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
    int64_t cost;
    /* Concurrency rules are peeked at (is a slot free?), no lease taken:
     * for forward-auth, whose caller never sees a lease to release. */
    bool peek_leases;
} rk_context_t;

typedef enum { RK_CONTEXT_OK = 0, RK_CONTEXT_BAD_PATH } rk_context_status_t;

/*
 * Fills items (at most cap) with the checks of every rule covering the
 * request, in priority order; *n is how many. Rules whose key chain finds
 * nothing in the request are skipped. client_key receives the client's
 * address as a key text (for logs). When the client's address or one of its
 * keys is on a list, *verdict says which and *n is 0: a safelisted client
 * skips every rule, a denylisted one is refused. Rules past the cap that
 * match are not applied: counted (rk_context_rules_dropped) and warned of
 * once per ruleset version.
 */
rk_context_status_t rk_context_items(const rk_ruleset_t *rules, const rk_context_t *ctx,
                                     rk_check_item_t *items, size_t cap, size_t *n,
                                     rk_list_verdict_t *verdict, char *client_key,
                                     size_t client_key_cap);

/* Checks that matched more rules than they could apply, since start. */
uint64_t rk_context_rules_dropped(void);

#endif
