/*
 * context.c — see context.h.
 */
#include "context.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../log.h"
#include "../runtime.h"
#include "identity.h"

/* Checks that matched more rules than they could apply. */
static atomic_uint_fast64_t rules_dropped;
/* The ruleset version whose dropped rules were last warned of (-1: none). */
static _Atomic int64_t warned_version = -1;

/* The host without port, lower-case, into out. */
static void normalize_host(const char *host, char *out, size_t cap) {
    size_t o = 0;
    if (host) {
        const char *end = host[0] == '[' ? strchr(host, ']') : strchr(host, ':');
        size_t len = end ? (size_t)(end - host) + (host[0] == '[') : strlen(host);
        for (size_t i = 0; i < len && o + 1 < cap; i++)
            out[o++] = (char)tolower((unsigned char)host[i]);
    }
    out[o] = '\0';
}

/* The verified JWT of the request's "Authorization: Bearer", or NULL. */
static rk_jwt_t *verified_jwt(const rk_context_t *ctx) {
    if (!rk_rt.jwt || !ctx->header)
        return NULL;
    const char *auth = ctx->header(ctx->header_ctx, "authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    const char *token = auth + 7;
    return rk_jwt_verify(rk_rt.jwt, token, strnlen(token, RK_JWT_MAX + 1), rk_now_ms());
}

/*
 * The client's plan. With JWT verification configured, only the verified
 * token's "plan" claim: X-Plan is the client's own word, and a client would
 * pick the largest plan. Without it, X-Plan, which the gateway or the
 * application is then trusted to set.
 */
static const char *client_plan(const rk_context_t *ctx, const rk_jwt_t *jwt, char *buf,
                               size_t cap) {
    if (rk_rt.jwt)
        return rk_jwt_claim(jwt, "plan", buf, cap);
    return ctx->header ? ctx->header(ctx->header_ctx, "x-plan") : NULL;
}

/* The first rule from index `from` on that covers the request, or NULL. */
static const rk_rule_t *next_match(const rk_ruleset_t *rules, size_t from,
                                   const rk_match_request_t *mreq) {
    size_t count = rk_ruleset_count(rules);
    for (size_t i = from; i < count; i++) {
        const rk_rule_t *rule = rk_ruleset_at(rules, i);
        if (rule->mode != RK_MODE_OFF && rk_match_request(&rule->match, mreq))
            return rule;
    }
    return NULL;
}

/*
 * A check filled its cap of items at rule index `from`: when a later rule
 * covers the request too, counts the check and warns once per ruleset
 * version (a check never logs otherwise).
 */
static void note_dropped(const rk_ruleset_t *rules, size_t from, const rk_match_request_t *mreq,
                         size_t cap) {
    const rk_rule_t *left = next_match(rules, from, mreq);
    if (!left)
        return;
    atomic_fetch_add_explicit(&rules_dropped, 1, memory_order_relaxed);
    int64_t version = rk_ruleset_version(rules);
    int64_t seen = atomic_load_explicit(&warned_version, memory_order_relaxed);
    if (seen == version || !atomic_compare_exchange_strong(&warned_version, &seen, version))
        return;
    rk_warn("A request matched more than %zu rules (ruleset version %lld): rules after the "
            "%zuth by priority, such as '%s', are not applied to it "
            "(ratekit_check_rules_dropped_total counts such checks)",
            cap, (long long)version, cap, left->id);
}

/*
 * What the request adds to a rule's check: its plan's limit (a key's own
 * override beats it), and a peek instead of a lease when the caller cannot
 * release one.
 */
static void adjust_item(rk_check_item_t *it, const rk_context_t *ctx, const char *plan) {
    if (ctx->peek_leases && it->lease_id[0]) {
        it->lease_id[0] = '\0';
        it->peek = true;
    }
    const rk_plan_t *p = plan ? rk_rule_plan(it->rule, plan) : NULL;
    if (p && !it->overridden)
        it->limit = p->limit;
}

uint64_t rk_context_rules_dropped(void) {
    return atomic_load_explicit(&rules_dropped, memory_order_relaxed);
}

rk_context_status_t rk_context_items(const rk_ruleset_t *rules, const rk_context_t *ctx,
                                     rk_check_item_t *items, size_t cap, size_t *n,
                                     rk_list_verdict_t *verdict, char *client_key,
                                     size_t client_key_cap) {
    *n = 0;
    *verdict = RK_LIST_NONE;
    char path[RK_PATH_MAX];
    if (!ctx->target || rk_path_normalize(ctx->target, ctx->target_len, path, sizeof path) != RK_OK)
        return RK_CONTEXT_BAD_PATH;
    char host[256];
    normalize_host(ctx->host, host, sizeof host);
    const char *method = ctx->method && *ctx->method ? ctx->method : "GET";
    /* The forwarding headers are read only from a trusted proxy (forward-auth
     * joins each one's lines: no work for a client that is its own peer). */
    bool forwarded = ctx->header && rk_cidr_list_contains(&rk_rt.trusted_proxies, &ctx->peer);
    rk_ip_t client = rk_client_ip(
        &ctx->peer, forwarded ? ctx->header(ctx->header_ctx, "x-forwarded-for") : NULL,
        forwarded ? ctx->header(ctx->header_ctx, "forwarded") : NULL,
        forwarded ? ctx->header(ctx->header_ctx, "x-real-ip") : NULL, &rk_rt.trusted_proxies);
    rk_ip_key(&client, (unsigned)rk_rt.cfg.ipv6_prefix, client_key, client_key_cap);
    int64_t now = rk_now_ms();
    *verdict = rk_lists_check_ip(&client, now);
    if (*verdict != RK_LIST_NONE)
        return RK_CONTEXT_OK;

    rk_match_request_t mreq = {rk_method_bit(method), path, host, ctx->header, ctx->header_ctx};
    rk_jwt_t *jwt = NULL;
    bool jwt_looked = false;
    char plan_buf[72];
    const char *plan = NULL;
    size_t count = rk_ruleset_count(rules), i;
    for (i = 0; i < count && *n < cap; i++) {
        const rk_rule_t *rule = rk_ruleset_at(rules, i);
        if (rule->mode == RK_MODE_OFF || !rk_match_request(&rule->match, &mreq))
            continue;
        if (!jwt_looked) { /* verify once, and only when a rule applies */
            jwt = verified_jwt(ctx);
            plan = client_plan(ctx, jwt, plan_buf, sizeof plan_buf);
            jwt_looked = true;
        }
        rk_identity_t id = {
            client_key,  method,          rule->match.path ? rule->match.path : path,
            ctx->header, ctx->header_ctx, jwt};
        char key[RK_KEY_TEXT_MAX];
        if (!rk_key_resolve(rule->key, rule->nkey, &id, key, sizeof key))
            continue;
        rk_check_item_t *it = &items[*n];
        rk_list_verdict_t v = rk_lists_check_key(key, now);
        if (v == RK_LIST_DENY || (v == RK_LIST_SAFE && *verdict == RK_LIST_NONE))
            *verdict = v;
        if (rk_check_item_init(it, rule, key, strlen(key), ctx->cost) != RK_OK)
            continue;
        adjust_item(it, ctx, plan);
        (*n)++;
    }
    rk_jwt_free(jwt);
    for (size_t k = 0; *n > 1 && k < *n; k++) {
        items[k].refundable = true; /* denied by one, the others are refunded */
        items[k].opens_check = k == 0;
    }
    if (RK_UNLIKELY(*n == cap) && *verdict == RK_LIST_NONE)
        note_dropped(rules, i, &mreq, cap);
    if (*verdict != RK_LIST_NONE)
        *n = 0;
    return RK_CONTEXT_OK;
}
