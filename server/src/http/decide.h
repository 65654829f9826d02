/*
 * decide.h — decides the items of a request and then answers it, without
 * holding a pool thread while the store works: on a store that answers
 * asynchronously (Redis), the request is parked (rk_request_park), the
 * check joins the round trip shared with the other checks in flight, and
 * the answer is written when the request is resumed. Used by /v1/check,
 * /v1/check/batch and /v1/auth.
 */
#ifndef RK_DECIDE_H
#define RK_DECIDE_H

#include "../check/check.h"
#include "http.h"

/* Writes the answer of decided items (now_ms: when they were decided); arg as given. */
typedef enum MHD_Result (*rk_answer_fn)(rk_request_t *req, rk_check_item_t *items, size_t n,
                                        int64_t now_ms, uintptr_t arg);

/*
 * Decides items (copied when the connection must wait; any number, sent to
 * the store together) and answers with answer(req, items, n, now_ms, arg):
 * at once, or once resumed. 503 when out of memory.
 */
enum MHD_Result rk_decide_then_answer(rk_request_t *req, rk_check_item_t *items, size_t n,
                                      rk_answer_fn answer, uintptr_t arg);

#endif
