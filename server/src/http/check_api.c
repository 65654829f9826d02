/*
 * check_api.c — the data plane: POST /v1/check, /v1/check/batch,
 * /v1/acquire, /v1/release, GET /healthz and /readyz.
 *
 * A check always answers 200 with the decision, whatever it is: the caller
 * asking is not itself limited; the status of the protected request is the
 * caller's to set. Answers carry the rate-limit headers of DESIGN.md §4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../check/check.h"
#include "../check/context.h"
#include "../runtime.h"
#include "../stats/stats.h"
#include "check_answer.h"
#include "check_reader.h"
#include "decide.h"
#include "http.h"

#define BATCH_MAX 100

typedef struct {
    unsigned status;
    const char *code;
    char message[160];
} check_error_t;

static bool fail(check_error_t *e, unsigned status, const char *code, const char *msg,
                 const char *arg) {
    e->status = status;
    e->code = code;
    snprintf(e->message, sizeof e->message, msg, arg ? arg : "");
    return false;
}

/* The lists' verdict on a direct check's key: as a key, and as an address when it is one. */
static rk_list_verdict_t list_verdict(const char *key, size_t len) {
    if (rk_lists_empty())
        return RK_LIST_NONE;
    int64_t now = rk_now_ms();
    rk_list_verdict_t v = rk_lists_check_key(key, now);
    rk_ip_t ip;
    if (v != RK_LIST_DENY && rk_ip_parse(key, len, &ip) == RK_OK) {
        rk_list_verdict_t by_ip = rk_lists_check_ip(&ip, now);
        if (by_ip != RK_LIST_NONE)
            v = by_ip;
    }
    return v;
}

/*
 * Fills one item from a direct-form check {"rule", "key", "cost"} (its
 * members as read); false with the error to answer when the check is
 * malformed or names no rule.
 */
static bool parse_direct(const rk_jv_t *rule, const rk_jv_t *key, const rk_jv_t *cost,
                         const rk_ruleset_t *rules, rk_check_item_t *it, rk_list_verdict_t *verdict,
                         check_error_t *e) {
    if (rule->kind != RK_JV_STRING || key->kind != RK_JV_STRING)
        return fail(e, 400, "invalid_request", "\"rule\" and \"key\" must be strings%s", NULL);
    if (key->len == 0)
        return fail(e, 400, "invalid_request", "\"key\" must not be empty%s", NULL);
    int64_t units = 1;
    if (!rk_jv_int(cost, 0, RK_COST_MAX, &units))
        return fail(e, 400, "invalid_request", "\"cost\" must be an integer from 0 to 1000000000%s",
                    NULL);
    const rk_rule_t *found = rule->len <= RK_RULE_ID_MAX ? rk_ruleset_find(rules, rule->str) : NULL;
    if (!found)
        return fail(e, 404, "unknown_rule", "No rule named '%.64s'", rule->str);
    if (rk_check_item_init(it, found, key->str, key->len, units) != RK_OK)
        return fail(e, 503, "unavailable", "no randomness for a lease id%s", NULL);
    *verdict = list_verdict(key->str, key->len);
    return true;
}

static enum MHD_Result reply_check_error(rk_request_t *req, const check_error_t *e) {
    return rk_reply_error(req, e->status, e->code, "%s", e->message);
}

/* A header of the context form's "headers" object, by case-insensitive name. */
static const char *body_header(void *ctx, const char *name) {
    return rk_check_body_header(ctx, name);
}

static const char *string_or_null(const rk_jv_t *v) {
    return v->kind == RK_JV_STRING ? v->str : NULL;
}

#define BAD_PATH "\"request.path\" must be a path starting with /"

/*
 * The context form {"request": {method, path, host, ip, headers}, "cost"}:
 * the server matches the rules and resolves the keys, as forward-auth does.
 * Fills items and *n; false with the error to answer.
 */
static bool parse_context(const rk_check_body_t *body, rk_check_item_t *items, size_t *n,
                          rk_list_verdict_t *verdict, check_error_t *e) {
    if (body->request.kind != RK_JV_OBJECT || body->path.kind != RK_JV_STRING ||
        (body->headers.kind != RK_JV_ABSENT && body->headers.kind != RK_JV_OBJECT))
        return fail(e, 400, "invalid_request",
                    "\"request\" needs a \"path\" string (and \"headers\" as an object)%s", NULL);
    rk_context_t ctx = {.method = string_or_null(&body->method),
                        .target = body->path.str,
                        .target_len = body->path.len,
                        .host = string_or_null(&body->host),
                        .header = body_header,
                        .header_ctx = (void *)body,
                        .cost = 1};
    if (!rk_jv_int(&body->cost, 0, RK_COST_MAX, &ctx.cost))
        return fail(e, 400, "invalid_request", "\"cost\" must be an integer from 0 to 1000000000%s",
                    NULL);
    if (body->path.len == 0 || body->path.str[0] != '/')
        return fail(e, 400, "invalid_request", BAD_PATH "%s", NULL);
    for (size_t i = 0; i < body->nheaders; i++) {
        if (body->header[i].value.kind != RK_JV_STRING) /* else read as absent, without a word */
            return fail(e, 400, "invalid_request", "\"request.headers\" values must be strings%s",
                        NULL);
    }
    const char *ip = string_or_null(&body->ip);
    if (!ip || rk_ip_parse(ip, body->ip.len, &ctx.peer) != RK_OK)
        return fail(e, 400, "invalid_request", "\"request.ip\" must be an IP address%s", NULL);
    char client[64];
    if (rk_context_items(rk_rules_current(), &ctx, items, RK_CHECK_MAX_ITEMS, n, verdict, client,
                         sizeof client) != RK_CONTEXT_OK)
        return fail(e, 400, "invalid_request", BAD_PATH "%s", NULL);
    return true;
}

/*
 * Whether a body the check reader read (st) can be used; when not, the
 * answer is sent (`what`, "check", "batch" or "release", names the body).
 */
static bool body_readable(rk_request_t *req, rk_check_read_status_t st, const char *what,
                          enum MHD_Result *sent) {
    switch (st) {
    case RK_CHECK_READ_OK:
        return true;
    case RK_CHECK_READ_DUPLICATE:
        *sent =
            rk_reply_error(req, 400, "invalid_request", "A member of the %s is given twice", what);
        return false;
    default:
        *sent = rk_reply_error(req, 400, "invalid_json", "The body is not valid JSON");
        return false;
    }
}

/*
 * Data-plane bodies are read with the check reader (no allocation; strings
 * decoded in place in the request's own copy of the body, which server.c
 * owns and keeps writable), so that a batch entry or a lease means what the
 * same text means to /v1/check: "\u0000" or a member given twice is refused,
 * never cut short or picked among.
 */
static bool read_check_body(rk_request_t *req, rk_check_body_t *body, enum MHD_Result *sent) {
    return body_readable(req, rk_check_read((char *)req->body, req->body_len, body), "check", sent);
}

static enum MHD_Result answer_check(rk_request_t *req, rk_check_item_t *items, size_t n,
                                    int64_t now_ms, uintptr_t arg) {
    (void)arg;
    rk_check_refund(items, n); /* one request: denied, it consumes nothing */
    return rk_reply_check_answer(req, items, n, now_ms);
}

/* POST /v1/check and POST /v1/acquire (acquire: the rule must be a concurrency one). */
static enum MHD_Result check_one(rk_request_t *req, bool acquire) {
    enum MHD_Result sent;
    rk_check_body_t body;
    if (!read_check_body(req, &body, &sent))
        return sent;
    static _Thread_local rk_check_item_t items[RK_CHECK_MAX_ITEMS];
    size_t n = 1;
    check_error_t e;
    rk_list_verdict_t verdict = RK_LIST_NONE;
    bool ok;
    if (body.root != RK_JV_OBJECT)
        ok = fail(&e, 400, "invalid_request", "a check must be a JSON object%s", NULL);
    else if (body.request.kind != RK_JV_ABSENT &&
             (body.rule.kind != RK_JV_ABSENT || body.key.kind != RK_JV_ABSENT))
        ok = fail(&e, 400, "invalid_request",
                  "a check names a \"rule\" and a \"key\", or gives a \"request\", not both%s",
                  NULL);
    else if (!acquire && body.request.kind != RK_JV_ABSENT)
        ok = parse_context(&body, items, &n, &verdict, &e);
    else
        ok = parse_direct(&body.rule, &body.key, &body.cost, rk_rules_current(), &items[0],
                          &verdict, &e);
    if (!ok)
        return reply_check_error(req, &e);
    if (verdict != RK_LIST_NONE) {
        rk_stats_count_listed(verdict == RK_LIST_DENY, 1);
        return rk_reply_list_verdict(req, verdict);
    }
    if (acquire && items[0].rule->limit.algorithm != RK_ALG_CONCURRENCY)
        return rk_reply_error(req, 400, "invalid_request",
                              "Rule '%s' is not a concurrency rule: use /v1/check",
                              items[0].rule->id);
    return rk_decide_then_answer(req, items, n, answer_check, 0);
}

static enum MHD_Result handle_check(rk_request_t *req) {
    return check_one(req, false);
}

static enum MHD_Result handle_acquire(rk_request_t *req) {
    return check_one(req, true);
}

/* What a batch's answer needs besides its decided items (a block of the request). */
typedef struct {
    size_t n;                              /* checks in the array */
    int item[BATCH_MAX];                   /* check i's item among the decided, or -1 */
    rk_list_verdict_t verdicts[BATCH_MAX]; /* of a check the lists answered */
    check_error_t errors[BATCH_MAX];       /* of an invalid check (code NULL: valid) */
} batch_t;

static enum MHD_Result answer_batch(rk_request_t *req, rk_check_item_t *items, size_t n,
                                    int64_t now_ms, uintptr_t arg) {
    (void)n;
    const batch_t *b = (const batch_t *)arg;
    const rk_check_item_t *answers[BATCH_MAX];
    const char *error_codes[BATCH_MAX];
    const char *error_messages[BATCH_MAX];
    for (size_t i = 0; i < b->n; i++) {
        answers[i] = b->item[i] >= 0 ? &items[b->item[i]] : NULL;
        error_codes[i] = b->errors[i].code;
        error_messages[i] = b->errors[i].message;
    }
    return rk_reply_batch_answer(req, answers, b->verdicts, error_codes, error_messages, b->n,
                                 now_ms);
}

/*
 * One entry of a batch, answered as /v1/check would answer it alone (but
 * for the context form, which a batch does not take); false with its error.
 */
static bool parse_entry(const rk_check_entry_t *c, const rk_ruleset_t *rules, rk_check_item_t *it,
                        rk_list_verdict_t *verdict, check_error_t *e) {
    if (c->kind != RK_JV_OBJECT)
        return fail(e, 400, "invalid_request", "a check must be a JSON object%s", NULL);
    if (c->duplicate)
        return fail(e, 400, "invalid_request", "A member of the check is given twice%s", NULL);
    if (c->request.kind != RK_JV_ABSENT)
        return fail(e, 400, "invalid_request",
                    "a batch takes checks that name a rule and a key; send a request's "
                    "context to /v1/check%s",
                    NULL);
    return parse_direct(&c->rule, &c->key, &c->cost, rules, it, verdict, e);
}

/*
 * POST /v1/check/batch {"checks": [...]}: answers {"results": [...]} in
 * order. Every valid check goes to the store at once, in one round trip.
 */
static enum MHD_Result handle_batch(rk_request_t *req) {
    enum MHD_Result sent;
    static _Thread_local rk_check_batch_t body; /* read before anything parks: one per thread */
    if (!body_readable(req, rk_check_read_batch((char *)req->body, req->body_len, &body), "batch",
                       &sent))
        return sent;
    if (body.root != RK_JV_OBJECT || body.checks.kind != RK_JV_ARRAY || body.n == 0 ||
        body.n > BATCH_MAX)
        return rk_reply_error(req, 400, "invalid_request",
                              "\"checks\" must be an array of 1 to %d checks", BATCH_MAX);
    batch_t *b = rk_request_alloc(req, sizeof *b);
    if (!b)
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    static _Thread_local rk_check_item_t items[BATCH_MAX];
    const rk_ruleset_t *rules = rk_rules_current();
    size_t nok = 0, denied = 0, safe = 0;
    b->n = body.n;
    for (size_t i = 0; i < b->n; i++) {
        b->item[i] = -1;
        b->verdicts[i] = RK_LIST_NONE;
        bool valid =
            parse_entry(&body.entry[i], rules, &items[nok], &b->verdicts[i], &b->errors[i]);
        if (valid)
            b->errors[i].code = NULL;
        if (valid && b->verdicts[i] == RK_LIST_NONE)
            b->item[i] = (int)nok++;
        denied += valid && b->verdicts[i] == RK_LIST_DENY;
        safe += valid && b->verdicts[i] == RK_LIST_SAFE;
    }
    rk_stats_count_listed(true, denied);
    rk_stats_count_listed(false, safe);
    return rk_decide_then_answer(req, items, nok, answer_batch, (uintptr_t)b);
}

/* A release while its request is parked (in the request's job area). */
typedef struct {
    rk_store_req_t sreq;
    char text[RK_LEASE_TEXT_MAX + 1]; /* the lease, cut into rule, id and key */
    bool released;
    bool released_locally; /* by the in-memory fallback (taken in fail_mode local) */
    rk_status_t st;
    rk_request_t *req;
} release_job_t;

_Static_assert(sizeof(release_job_t) <= RK_REQUEST_JOB_AREA, "a release fits the job area");

static enum MHD_Result answer_release(rk_request_t *req, rk_status_t st, bool released) {
    if (st != RK_OK)
        return rk_reply_error(req, 503, "store_unavailable", "The store did not answer");
    return rk_reply_buf(req, 200, "application/json",
                        released ? "{\"released\":true}" : "{\"released\":false}",
                        released ? 17 : 18);
}

/* A lease ended in the fallback has ended, whatever the store answers. */
static enum MHD_Result answer_release_job(rk_request_t *req, const release_job_t *j) {
    if (j->released_locally)
        return answer_release(req, RK_OK, true);
    return answer_release(req, j->st, j->released);
}

static enum MHD_Result release_resumed(rk_request_t *req) {
    return answer_release_job(req, rk_request_job_area(req));
}

/* The store ended the lease (or failed): wake the connection up. */
static void release_done(void *ctx, rk_status_t st) {
    release_job_t *j = ctx;
    j->st = st;
    rk_request_resume(j->req); /* the last touch: the request may end after it */
}

/* A lease's parts, cut out of its text (RK_LEASE_TEXT_MAX). */
typedef struct {
    const char *rule_id, *lease_id, *key;
    int64_t units; /* 0 for a lease written without them */
} lease_parts_t;

/*
 * Cuts "<rule>.<id>-<units>.<key>" or "<rule>.<id>.<key>" (id: RK_LEASE_ID_LEN
 * characters) in place; false when text is neither.
 */
static bool parse_lease(char *text, lease_parts_t *out) {
    char *id = strchr(text, '.');
    if (!id || strnlen(++id, RK_LEASE_ID_LEN) != RK_LEASE_ID_LEN)
        return false;
    char *end = id + RK_LEASE_ID_LEN;
    out->units = 0;
    if (*end == '-') {
        if (end[1] < '0' || end[1] > '9') /* strtoll would take a sign or a space */
            return false;
        long long units = strtoll(end + 1, &end, 10); /* LLONG_MAX when too long */
        if (units < 1 || units > RK_COST_MAX)
            return false;
        out->units = units;
    }
    if (*end != '.' || !end[1])
        return false;
    id[-1] = id[RK_LEASE_ID_LEN] = *end = '\0';
    out->rule_id = text;
    out->lease_id = id;
    out->key = end + 1;
    return true;
}

/*
 * POST /v1/release {"lease": "<rule>.<id>-<units>.<key>"}: ends a lease.
 * Answers {"released": true|false}. On a store that answers
 * asynchronously, the request waits parked, as a check does.
 */
static enum MHD_Result handle_release(rk_request_t *req) {
    enum MHD_Result sent;
    rk_release_body_t body;
    if (!body_readable(req, rk_check_read_release((char *)req->body, req->body_len, &body),
                       "release", &sent))
        return sent;
    release_job_t *j = rk_request_job_area(req);
    const rk_jv_t *lease = &body.lease;
    bool ok = lease->kind == RK_JV_STRING && lease->len < sizeof j->text;
    if (ok)
        memcpy(j->text, lease->str, lease->len + 1);
    lease_parts_t p;
    if (!ok || !parse_lease(j->text, &p))
        return rk_reply_error(req, 400, "invalid_request",
                              "\"lease\" must be a lease returned by /v1/acquire");
    const rk_rule_t *rule = rk_ruleset_find(rk_rules_current(), p.rule_id);
    if (!rule)
        return rk_reply_error(req, 404, "unknown_rule", "No rule named '%s'", p.rule_id);
    /* Only a concurrency rule holds leases: any other algorithm's script would
     * spend the lease's units as a check. Such a lease (forged, or its rule
     * changed since) is one that ended, as on the embedded store. */
    if (rule->limit.algorithm != RK_ALG_CONCURRENCY)
        return answer_release(req, RK_OK, false);
    /* The rule id is the copy in text: the ruleset may change while the store works. */
    j->sreq = (rk_store_req_t){.rule_id = p.rule_id,
                               .key = p.key,
                               .limit = rule->limit,
                               .cost = p.units,
                               .now_ms = -1,
                               .lease_id = p.lease_id};
    j->released = j->released_locally = false;
    /* A lease taken while the store failed (fail_mode "local") is counted in
     * the in-memory fallback: it ends there at once, and is answered ended
     * even while the store is still down. The store is told too: the
     * acquire that timed out may have landed in Redis after all. */
    rk_store_t *fallback = rk_rt.fallback;
    if (fallback && fallback != rk_rt.store)
        (void)fallback->ops->release(fallback, &j->sreq, p.lease_id, &j->released_locally);
    rk_store_t *store = rk_rt.store;
    if (!store->ops->release_async) {
        j->st = store->ops->release(store, &j->sreq, p.lease_id, &j->released);
        return answer_release_job(req, j);
    }
    j->req = req;
    req->resume = release_resumed;
    rk_request_park(req); /* before the store can resume it */
    if (store->ops->release_async(store, &j->sreq, p.lease_id, &j->released, release_done, j) !=
        RK_OK)
        release_done(j, RK_ERR);
    return MHD_YES;
}

static enum MHD_Result handle_healthz(rk_request_t *req) {
    static const char ok[] = "{\"status\":\"ok\"}";
    return rk_reply_buf(req, 200, "application/json", ok, sizeof ok - 1);
}

/* Ready when the store answers; 503 otherwise, so a balancer routes elsewhere. */
static enum MHD_Result handle_readyz(rk_request_t *req) {
    bool healthy = rk_rt.store->ops->healthy(rk_rt.store);
    char body[160];
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"store\":\"%s\",\"store_healthy\":%s}",
                     healthy ? "ready" : "degraded", rk_rt.store_kind, healthy ? "true" : "false");
    return rk_reply_buf(req, healthy ? 200 : 503, "application/json", body, (size_t)n);
}

const rk_route_t rk_check_routes[] = {
    {"POST", "/v1/check", handle_check, RK_ROLE_NONE, false},
    {"POST", "/v1/check/batch", handle_batch, RK_ROLE_NONE, false},
    {"POST", "/v1/acquire", handle_acquire, RK_ROLE_NONE, false},
    {"POST", "/v1/release", handle_release, RK_ROLE_NONE, false},
    {"GET", "/healthz", handle_healthz, RK_ROLE_NONE, false},
    {"GET", "/readyz", handle_readyz, RK_ROLE_NONE, false},
};
const size_t rk_check_routes_len = RK_ARRAY_LEN(rk_check_routes);
