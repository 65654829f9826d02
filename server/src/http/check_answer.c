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

/* Appends text (len bytes) at *at in a buffer ending at end, NUL-terminated; bounded. */
static void put(char **at, char *end, const char *text, size_t len) {
    size_t room = (size_t)(end - *at) - 1;
    if (len > room)
        len = room;
    memcpy(*at, text, len);
    *at += len;
    **at = '\0';
}

static void put_int(char **at, char *end, int64_t v) {
    char num[RK_INT_TEXT_MAX];
    put(at, end, num, rk_format_int(v, num));
}

/* "\"<rule>\";<n1><a>" followed by "<n2><b>": the IETF RateLimit fields. */
static void put_field(char *buf, size_t cap, const char *rule, const char *n1, const char *a,
                      const char *n2, int64_t b) {
    char *at = buf, *end = buf + cap;
    put(&at, end, "\"", 1);
    put(&at, end, rule, strlen(rule));
    put(&at, end, "\";", 2);
    put(&at, end, n1, 2);
    put(&at, end, a, strlen(a));
    put(&at, end, n2, 3);
    put_int(&at, end, b);
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
    rk_format_int(d->limit, h->limit);
    rk_format_int(d->remaining, h->remaining);
    put_field(h->policy, sizeof h->policy, it->rule->id, "q=", h->limit,
              ";w=", ceil_div(it->limit.window_ms, 1000));
    put_field(h->ratelimit, sizeof h->ratelimit, it->rule->id, "r=", h->remaining,
              ";t=", ceil_div(d->reset_ms, 1000));
    rk_format_int(ceil_div(now_ms + d->reset_ms, 1000), h->reset);
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

/* The members every decision carries, after an opening "{". */
static void write_decision(rk_jw_t *w, const rk_decision_t *d, bool allowed) {
    rk_jw_lit(w, allowed ? "\"allowed\":true" : "\"allowed\":false");
    rk_jw_member_int(w, "limit", d->limit);
    rk_jw_member_int(w, "remaining", d->remaining);
    rk_jw_member_int(w, "reset_ms", d->reset_ms);
    rk_jw_member_int(w, "retry_after_ms", allowed ? 0 : d->retry_after_ms);
    if (d->delay_ms > 0)
        rk_jw_member_int(w, "delay_ms", d->delay_ms);
}

/* Room for the longest decision (about 180 bytes): its writer never moves to the heap. */
#define DECISION_TEXT_MAX 256

/* The lease of an allowed concurrency check that holds units (RK_LEASE_TEXT_MAX). */
static void write_lease(rk_jw_t *w, const rk_check_item_t *it) {
    if (!it->lease_id[0] || !it->decision.allowed || it->cost <= 0)
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
    char head_buf[DECISION_TEXT_MAX];
    rk_jw_t head_text;
    rk_jw_init(&head_text, head_buf, sizeof head_buf);
    write_decision(&head_text, &head->decision, allowed);
    rk_jw_raw(w, "{", 1);
    rk_jw_raw(w, head_text.buf, head_text.len);
    rk_jw_member_plain(w, "rule", head->rule->id);
    rk_jw_member_plain(w, "mode", mode_names[head->rule->mode]);
    write_lease(w, head);
    rk_jw_lit(w, ",\"results\":[");
    for (size_t i = 0; i < n; i++) {
        const rk_check_item_t *it = &items[i];
        rk_jw_lit(w, i ? ",{\"rule\":" : "{\"rule\":");
        rk_jw_plain_str(w, it->rule->id);
        rk_jw_member_str(w, "key", it->key);
        rk_jw_member_plain(w, "mode", mode_names[it->rule->mode]);
        rk_jw_raw(w, ",", 1);
        if (it == head && it->decision.allowed == allowed)
            rk_jw_raw(w, head_text.buf, head_text.len);
        else
            write_decision(w, &it->decision, it->decision.allowed);
        if (it->failed_over)
            rk_jw_member_plain(w, "fail_mode", fail_names[it->fail_mode_used]);
        rk_jw_raw(w, "}", 1);
    }
    rk_jw_lit(w, "]}");
    rk_jw_free(&head_text);
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
