/*
 * auth_api.c — GET /v1/auth, the forward-auth endpoint for nginx
 * auth_request, Traefik ForwardAuth, Caddy forward_auth and Envoy ext_authz.
 *
 * The original request is read from X-Original-Method / X-Forwarded-Method,
 * X-Original-URI / X-Forwarded-Uri and X-Forwarded-Host (or Host); the
 * client from the peer and, when the peer is a trusted proxy,
 * X-Forwarded-For / Forwarded / X-Real-IP. Allowed: 200 with the rate-limit
 * headers. Denied: 429, or the 4xx in ?deny_status= (nginx auth_request
 * passes only 401 and 403), with the error body and Retry-After.
 *
 * Envoy's HTTP ext_authz sends the original method and appends the original
 * path to its path_prefix ("POST /v1/auth/api/items"): any method on
 * /v1/auth/... is a check of the request named by the rest of the path.
 *
 * A gateway cannot release a lease, so a concurrency rule is only looked
 * at: the request passes while a slot is free (held by leases of
 * /v1/acquire or of context-form /v1/check), and takes none.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../check/context.h"
#include "../runtime.h"
#include "../stats/stats.h"
#include "check_answer.h"
#include "decide.h"
#include "delay.h"
#include "http.h"

/* Room for a joined X-Forwarded-For or Forwarded; the walk reads from the
 * right, so a longer list loses its left end (what its client wrote). */
#define HOPS_TEXT_MAX 8192

/* A header sent on several lines, joined with ", " in order (RFC 9110 §5.3). */
typedef struct {
    const char *name;
    char *buf;
    size_t len;
    unsigned lines;
} joined_t;

static enum MHD_Result join_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    (void)kind;
    joined_t *j = cls;
    if (!key || !value || strcasecmp(key, j->name) != 0)
        return MHD_YES;
    const char *parts[2] = {", ", value};
    for (int i = j->lines ? 0 : 1; i < 2; i++) {
        size_t add = strlen(parts[i]), room = HOPS_TEXT_MAX - 1;
        if (add >= room) { /* keep the right end of a line longer than the room */
            parts[i] += add - room;
            add = room;
            j->len = 0;
        } else if (j->len + add > room) {
            size_t drop = j->len + add - room;
            memmove(j->buf, j->buf + drop, j->len - drop);
            j->len -= drop;
        }
        memcpy(j->buf + j->len, parts[i], add);
        j->len += add;
    }
    j->buf[j->len] = '\0';
    j->lines++;
    return MHD_YES;
}

/* The request's headers as the context reads them: a proxy may add its own
 * X-Forwarded-For or Forwarded line below the client's, so those two are
 * read whole, every line of them. */
typedef struct {
    struct MHD_Connection *conn;
    char xff[HOPS_TEXT_MAX], forwarded[HOPS_TEXT_MAX];
} auth_headers_t;

static const char *joined_header(struct MHD_Connection *c, const char *name, char *buf) {
    joined_t j = {name, buf, 0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, join_line, &j);
    return j.lines ? buf : NULL;
}

static const char *mhd_header(void *ctx, const char *name) {
    auth_headers_t *h = ctx;
    if (!strcasecmp(name, "x-forwarded-for"))
        return joined_header(h->conn, name, h->xff);
    if (!strcasecmp(name, "forwarded"))
        return joined_header(h->conn, name, h->forwarded);
    return MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, name);
}

static const char *first_header(struct MHD_Connection *c, const char *a, const char *b) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, a);
    return v && v[0] ? v : MHD_lookup_connection_value(c, MHD_HEADER_KIND, b); /* "": absent */
}

/* The address of the connection's peer. */
static rk_ip_t peer_address(struct MHD_Connection *c) {
    rk_ip_t ip = {0};
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    char text[64] = "";
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, text,
                  sizeof text);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, text,
                  sizeof text);
    if (rk_ip_parse(text, strlen(text), &ip) != RK_OK)
        memset(&ip, 0, sizeof ip);
    return ip;
}

/* ?deny_status=: a 4xx, default 429. */
static unsigned deny_status(rk_request_t *req) {
    const char *v = rk_request_query(req, "deny_status");
    long s = v ? strtol(v, NULL, 10) : 429;
    return s >= 400 && s <= 499 ? (unsigned)s : 429;
}

/*
 * The body of a denial: the one error shape, with what the client needs to
 * back off. reset_at is X-RateLimit-Reset's instant (rounded up to the
 * second): truncated, it could name a time before the state is back to full.
 */
static void write_denial(rk_jw_t *w, const rk_check_item_t *it, const rk_rl_headers_t *h) {
    char reset_at[32];
    rk_format_time(h->reset_s * 1000, reset_at);
    char message[128];
    snprintf(message, sizeof message, "Rate limit exceeded for rule '%s'", it->rule->id);
    rk_jw_lit(w, "{\"error\":{\"code\":\"rate_limited\"");
    rk_jw_member_str(w, "message", message);
    rk_jw_member_str(w, "rule", it->rule->id);
    rk_jw_member_int(w, "limit", it->decision.limit);
    rk_jw_member_int(w, "remaining", it->decision.remaining);
    rk_jw_member_str(w, "reset_at", reset_at);
    rk_jw_member_int(w, "retry_after_ms", it->decision.retry_after_ms);
    rk_jw_lit(w, "}}");
}

/*
 * The answer of the decided items: 200, or the denial status with the
 * error body; a shaping rule's delay first (honour_deny_status: arg).
 */
static enum MHD_Result answer_auth(rk_request_t *req, rk_check_item_t *items, size_t n, int64_t now,
                                   uintptr_t honour_deny_status) {
    rk_rl_headers_t h;
    rk_check_refund(items, n); /* denied, the request consumes nothing */
    rk_check_headers(items, n, now, &h);
    bool allowed = rk_check_allowed(items, n);
    char stack[1024];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    unsigned status = MHD_HTTP_OK;
    if (allowed) {
        rk_jw_lit(&w, "{\"allowed\":true}");
    } else {
        write_denial(&w, &items[rk_check_headline(items, n)], &h);
        status = honour_deny_status ? deny_status(req) : MHD_HTTP_TOO_MANY_REQUESTS;
    }
    struct MHD_Response *resp =
        w.failed ? NULL : MHD_create_response_from_buffer(w.len, w.buf, MHD_RESPMEM_MUST_COPY);
    rk_jw_free(&w);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    rk_add_rl_headers(resp, &h);
    /* A shaping rule delays the answer rather than deny: wait without a thread. */
    int64_t delay_ms = 0;
    for (size_t i = 0; allowed && i < n; i++)
        if (items[i].rule->mode == RK_MODE_ENFORCE && items[i].decision.delay_ms > delay_ms)
            delay_ms = items[i].decision.delay_ms;
    return rk_reply_later(req, status, resp, delay_ms);
}

/*
 * Checks the original request target (a path, maybe with a query) sent with
 * the original method (NULL: from the headers). honour_deny_status is false
 * when the query string belongs to the original request, not to the proxy.
 */
static enum MHD_Result check_original(rk_request_t *req, const char *target, const char *method,
                                      bool honour_deny_status) {
    struct MHD_Connection *c = req->conn;
    auth_headers_t headers;
    headers.conn = c;
    rk_context_t ctx = {.method = method,
                        .target = target,
                        .target_len = strnlen(target, RK_PATH_MAX * 4),
                        .host = first_header(c, "X-Forwarded-Host", MHD_HTTP_HEADER_HOST),
                        .peer = peer_address(c),
                        .header = mhd_header,
                        .header_ctx = &headers,
                        .cost = 1,
                        .peek_leases = true};
    static _Thread_local rk_check_item_t items[RK_CHECK_MAX_ITEMS];
    size_t n = 0;
    char client[64];
    rk_list_verdict_t verdict;
    if (rk_context_items(rk_rules_current(), &ctx, items, RK_CHECK_MAX_ITEMS, &n, &verdict, client,
                         sizeof client) != RK_CONTEXT_OK)
        return rk_reply_error(req, 400, "invalid_request",
                              "X-Original-URI / X-Forwarded-Uri must be a path starting with /");
    if (verdict != RK_LIST_NONE) /* the safelisted one has no rule to decide: allowed below */
        rk_stats_count_listed(verdict == RK_LIST_DENY, 1);
    if (verdict == RK_LIST_DENY)
        return rk_reply_error(req, 403, "forbidden", "This client is on the denylist");
    return rk_decide_then_answer(req, items, n, answer_auth, honour_deny_status);
}

/* GET /v1/auth: the original request is named by the proxy's headers. */
static enum MHD_Result handle_auth(rk_request_t *req) {
    const char *target = first_header(req->conn, "X-Original-URI", "X-Forwarded-Uri");
    return check_original(req, target ? target : "/",
                          first_header(req->conn, "X-Original-Method", "X-Forwarded-Method"), true);
}

/*
 * <any method> /v1/auth/<path>: Envoy ext_authz. The headers still win when
 * present; otherwise the original path is the rest of this one and the
 * original method is this request's.
 */
static enum MHD_Result handle_auth_suffix(rk_request_t *req) {
    const char *target = first_header(req->conn, "X-Original-URI", "X-Forwarded-Uri");
    const char *method = first_header(req->conn, "X-Original-Method", "X-Forwarded-Method");
    if (!target)
        target = req->path + strlen("/v1/auth");
    return check_original(req, target, method ? method : req->method, false);
}

const rk_route_t rk_auth_routes[] = {
    {"GET", "/v1/auth", handle_auth, RK_ROLE_NONE, false},
    {"POST", "/v1/auth", handle_auth, RK_ROLE_NONE, false},
    {"*", "/v1/auth/*", handle_auth_suffix, RK_ROLE_NONE, false},
};
const size_t rk_auth_routes_len = RK_ARRAY_LEN(rk_auth_routes);
