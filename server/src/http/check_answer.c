/*
 * check_answer.c — see check_answer.h.
 */
#include "check_answer.h"

#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {"enforce", "shadow", "off"};

static int64_t ceil_div(int64_t a, int64_t b) {
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* Copies a string literal at the cursor and moves it past. */
#define PUT_LIT(at, lit) (memcpy((at), (lit), sizeof(lit) - 1), (at) += sizeof(lit) - 1)

/* A RateLimit field: a quoted rule id, ";", two numbers and their names. */
#define RL_FIELD_MAX (1 + RK_RULE_ID_MAX + 2 + 2 + 3 + 2 * (RK_INT_TEXT_MAX - 1) + 1)
_Static_assert(sizeof((rk_rl_headers_t *)0)->policy >= RL_FIELD_MAX &&
                   sizeof((rk_rl_headers_t *)0)->ratelimit >= RL_FIELD_MAX,
               "a RateLimit field holds the longest rule id and two numbers");

/* "\"<rule>\";<n1><a>" followed by "<n2><b>": the IETF RateLimit fields (n1 2
 * bytes, n2 3, a at most RK_INT_TEXT_MAX - 1). */
static void put_field(char *buf, const char *rule, const char *n1, const char *a, size_t a_len,
                      const char *n2, int64_t b) {
    size_t id_len = strnlen(rule, RK_RULE_ID_MAX);
    char *at = buf;
    *at++ = '"';
    memcpy(at, rule, id_len);
    at += id_len;
    PUT_LIT(at, "\";");
    memcpy(at, n1, 2);
    memcpy(at + 2, a, a_len);
    at += 2 + a_len;
    memcpy(at, n2, 3);
    rk_format_int(b, at + 3);
}

void rk_check_headers(const rk_check_item_t *items, size_t n, int64_t now_ms, rk_rl_headers_t *h) {
    int top = rk_check_headline(items, n);
    if (top < 0) {
        memset(h, 0, sizeof *h);
        return;
    }
    const rk_check_item_t *it = &items[top];
    const rk_decision_t *d = &it->decision;
    bool denied = !rk_check_allowed(items, n);
    size_t limit_len = rk_format_int(d->limit, h->limit);
    size_t remaining_len = rk_format_int(d->remaining, h->remaining);
    put_field(h->policy, it->rule->id, "q=", h->limit, limit_len,
              ";w=", ceil_div(it->limit.window_ms, 1000));
    put_field(h->ratelimit, it->rule->id, "r=", h->remaining, remaining_len,
              ";t=", ceil_div(d->reset_ms, 1000));
    h->reset_s = ceil_div(now_ms + d->reset_ms, 1000);
    rk_format_int(h->reset_s, h->reset);
    h->retry_after[0] = '\0';
    if (denied)
        rk_format_int(d->retry_after_ms > 0 ? ceil_div(d->retry_after_ms, 1000) : 1,
                      h->retry_after);
}

void rk_add_rl_headers(struct MHD_Response *resp, const rk_rl_headers_t *h) {
    if (!h->policy[0])
        return;
    MHD_add_response_header(resp, "RateLimit-Policy", h->policy);
    MHD_add_response_header(resp, "RateLimit", h->ratelimit);
    MHD_add_response_header(resp, "X-RateLimit-Limit", h->limit);
    MHD_add_response_header(resp, "X-RateLimit-Remaining", h->remaining);
    MHD_add_response_header(resp, "X-RateLimit-Reset", h->reset);
    if (h->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, h->retry_after);
}

/* Room for the longest decision (179 bytes and the NUL). */
#define DECISION_TEXT_MAX 256
_Static_assert(sizeof "\"allowed\":false,\"limit\":" + sizeof ",\"remaining\":" +
                       sizeof ",\"reset_ms\":" + sizeof ",\"retry_after_ms\":" +
                       sizeof ",\"delay_ms\":" - 5 + 5 * (RK_INT_TEXT_MAX - 1) + 1 <=
                   DECISION_TEXT_MAX,
               "a decision's text holds its five members at their longest");

/* The members every decision carries, after an opening "{", written at out
 * (DECISION_TEXT_MAX bytes) in one pass; their length. */
static size_t decision_text(char *out, const rk_decision_t *d, bool allowed) {
    char *at = out;
    if (allowed)
        PUT_LIT(at, "\"allowed\":true,\"limit\":");
    else
        PUT_LIT(at, "\"allowed\":false,\"limit\":");
    at += rk_format_int(d->limit, at);
    PUT_LIT(at, ",\"remaining\":");
    at += rk_format_int(d->remaining, at);
    PUT_LIT(at, ",\"reset_ms\":");
    at += rk_format_int(d->reset_ms, at);
    PUT_LIT(at, ",\"retry_after_ms\":");
    at += rk_format_int(allowed ? 0 : d->retry_after_ms, at);
    if (d->delay_ms > 0) {
        PUT_LIT(at, ",\"delay_ms\":");
        at += rk_format_int(d->delay_ms, at);
    }
    return (size_t)(at - out);
}

/* The lease of an allowed concurrency check that holds units (RK_LEASE_TEXT_MAX);
 * nothing for any other check (a peek holds none), nor for a denied request,
 * whose leases ratekit ends itself (rk_check_refund). */
static void write_lease(rk_jw_t *w, const rk_check_item_t *it, bool request_allowed) {
    if (!request_allowed || !it->lease_id[0] || !it->decision.allowed || it->cost <= 0)
        return;
    char lease[RK_LEASE_TEXT_MAX + 1];
    snprintf(lease, sizeof lease, "%s.%s-%lld.%s", it->rule->id, it->lease_id, (long long)it->cost,
             it->key);
    rk_jw_member_str(w, "lease", lease);
}

static const char *const fail_names[] = {"open", "closed", "local"};

void rk_write_check_answer(rk_jw_t *w, const rk_check_item_t *items, size_t n) {
    int top = rk_check_headline(items, n);
    if (top < 0) { /* no rule covers the request */
        rk_jw_lit(w, "{\"allowed\":true,\"results\":[]}");
        return;
    }
    bool allowed = rk_check_allowed(items, n);
    const rk_check_item_t *head = &items[top];
    /* The headline decision, written once: the results repeat it. */
    char head_text[DECISION_TEXT_MAX], text[DECISION_TEXT_MAX];
    size_t head_len = decision_text(head_text, &head->decision, allowed);
    rk_jw_raw(w, "{", 1);
    rk_jw_raw(w, head_text, head_len);
    rk_jw_member_plain(w, "rule", head->rule->id);
    rk_jw_member_plain(w, "mode", mode_names[head->rule->mode]);
    write_lease(w, head, allowed);
    rk_jw_lit(w, ",\"results\":[");
    for (size_t i = 0; i < n; i++) {
        const rk_check_item_t *it = &items[i];
        rk_jw_lit(w, i ? ",{\"rule\":" : "{\"rule\":");
        rk_jw_plain_str(w, it->rule->id);
        rk_jw_member_str(w, "key", it->key);
        rk_jw_member_plain(w, "mode", mode_names[it->rule->mode]);
        rk_jw_raw(w, ",", 1);
        if (it == head && it->decision.allowed == allowed)
            rk_jw_raw(w, head_text, head_len);
        else
            rk_jw_raw(w, text, decision_text(text, &it->decision, it->decision.allowed));
        if (it->failed_over)
            rk_jw_member_plain(w, "fail_mode", fail_names[it->fail_mode_used]);
        write_lease(w, it,
                    allowed); /* each lease taken, the headline's or not: all must be released */
        rk_jw_raw(w, "}", 1);
    }
    rk_jw_lit(w, "]}");
}

/*
 * Answers the JSON text in w (headers h, when given). Written in the
 * request's answer buffer, it goes out from there without a copy; moved to
 * the heap (a large batch), MHD takes the heap buffer and frees it.
 */
static enum MHD_Result reply_json_text(rk_request_t *req, rk_jw_t *w, const rk_rl_headers_t *h) {
    if (w->failed) {
        rk_jw_free(w);
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        w->len, w->buf, w->on_heap ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        rk_jw_free(w);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (h)
        rk_add_rl_headers(resp, h);
    return rk_reply_response(req, MHD_HTTP_OK, resp);
}

/* A writer into the request's answer buffer (see rk_request_answer_buf). */
static void answer_writer(rk_request_t *req, rk_jw_t *w) {
    size_t cap;
    char *buf = rk_request_answer_buf(req, &cap);
    rk_jw_init(w, buf, cap);
}

enum MHD_Result rk_reply_check_answer(rk_request_t *req, const rk_check_item_t *items, size_t n,
                                      int64_t now_ms) {
    rk_jw_t w;
    answer_writer(req, &w);
    rk_write_check_answer(&w, items, n);
    rk_rl_headers_t h;
    rk_check_headers(items, n, now_ms, &h);
    return reply_json_text(req, &w, &h);
}

static const char *verdict_answer(rk_list_verdict_t verdict) {
    return verdict == RK_LIST_DENY ? "{\"allowed\":false,\"reason\":\"denylist\",\"results\":[]}"
                                   : "{\"allowed\":true,\"reason\":\"safelist\",\"results\":[]}";
}

enum MHD_Result rk_reply_list_verdict(rk_request_t *req, rk_list_verdict_t verdict) {
    const char *body = verdict_answer(verdict); /* a literal: sent as it is */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return rk_reply_response(req, MHD_HTTP_OK, resp);
}

enum MHD_Result rk_reply_batch_answer(rk_request_t *req, const rk_check_item_t *const *answers,
                                      const rk_list_verdict_t *verdicts,
                                      const char *const *error_codes,
                                      const char *const *error_messages, size_t n, int64_t now_ms) {
    (void)now_ms;
    rk_jw_t w;
    answer_writer(req, &w);
    rk_jw_lit(&w, "{\"results\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            rk_jw_raw(&w, ",", 1);
        if (answers[i]) {
            rk_write_check_answer(&w, answers[i], 1);
            continue;
        }
        if (!error_codes[i]) {
            rk_jw_lit(&w, verdict_answer(verdicts[i]));
            continue;
        }
        rk_jw_lit(&w, "{\"error\":{\"code\":");
        rk_jw_str(&w, error_codes[i]);
        rk_jw_member_str(&w, "message", error_messages[i]);
        rk_jw_lit(&w, "}}");
    }
    rk_jw_lit(&w, "]}");
    return reply_json_text(req, &w, NULL);
}
