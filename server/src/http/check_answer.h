/*
 * check_answer.h — the answer of a check: its JSON body and its rate-limit
 * headers (IETF RateLimit / RateLimit-Policy, legacy X-RateLimit-*,
 * Retry-After), shared by /v1/check, /v1/check/batch, /v1/auth and the
 * dashboard's "try it".
 */
#ifndef RK_CHECK_ANSWER_H
#define RK_CHECK_ANSWER_H

#include "../check/check.h"
#include "../lists/lists.h"
#include "http.h"
#include "jsonw.h"

/*
 * A lease as /v1/acquire answers it: "<rule>.<lease id>-<units>.<key>". Its
 * units let a Redis store find it by its sorted-set member instead of
 * searching the set (a lease without them, "<rule>.<lease id>.<key>", is
 * still released: by a search).
 */
#define RK_LEASE_TEXT_MAX (RK_RULE_ID_MAX + RK_LEASE_ID_LEN + RK_STORE_KEY_MAX + 24)

typedef struct {
    char policy[128];     /* RateLimit-Policy */
    char ratelimit[128];  /* RateLimit */
    char limit[24];       /* X-RateLimit-Limit */
    char remaining[24];   /* X-RateLimit-Remaining */
    char reset[24];       /* X-RateLimit-Reset (epoch seconds) */
    int64_t reset_s;      /* the same instant as a number: a denial's reset_at */
    char retry_after[24]; /* Retry-After (whole seconds), "" when allowed */
} rk_rl_headers_t;

/* The header values describing the answer of items (now_ms: wall clock). */
void rk_check_headers(const rk_check_item_t *items, size_t n, int64_t now_ms, rk_rl_headers_t *h);
void rk_add_rl_headers(struct MHD_Response *resp, const rk_rl_headers_t *h);

/* Writes the JSON answer of one check (its items) into w: each result that
 * holds a lease carries it, and the top level the headline's. */
void rk_write_check_answer(rk_jw_t *w, const rk_check_item_t *items, size_t n);

/* 200 with the answer and its headers. */
enum MHD_Result rk_reply_check_answer(rk_request_t *req, const rk_check_item_t *items, size_t n,
                                      int64_t now_ms);

/* 200 {"allowed": ..., "reason": "safelist"|"denylist", "results": []}. */
enum MHD_Result rk_reply_list_verdict(rk_request_t *req, rk_list_verdict_t verdict);

/* 200 {"results": [...]}: answers[i]; where NULL, the list verdict or an error object. */
enum MHD_Result rk_reply_batch_answer(rk_request_t *req, const rk_check_item_t *const *answers,
                                      const rk_list_verdict_t *verdicts,
                                      const char *const *error_codes,
                                      const char *const *error_messages, size_t n, int64_t now_ms);

#endif
