/*
 * decide.c — see decide.h.
 */
#include "decide.h"

#include <string.h>

/* A check decided while its connection is suspended: everything it needs
 * lives in the request's job area until the request completes. */
typedef struct {
    rk_check_job_t job;
    rk_check_item_t items[RK_CHECK_ASYNC_MAX];
    size_t n;
    int64_t now_ms;
    rk_answer_fn answer;
    uintptr_t arg;
    rk_request_t *req;
} pending_t;

_Static_assert(sizeof(pending_t) <= RK_REQUEST_JOB_AREA, "a pending check fits the job area");

/* Called again once resumed (server.c): the items are decided. */
static enum MHD_Result answer_resumed(rk_request_t *req) {
    pending_t *p = rk_request_job_area(req);
    return p->answer(req, p->items, p->n, p->now_ms, p->arg);
}

/* The store decided: wake the connection up. */
static void decided(void *ctx) {
    pending_t *p = ctx;
    rk_request_resume(p->req); /* the last touch: the request may end after it */
}

enum MHD_Result rk_decide_then_answer(rk_request_t *req, rk_check_item_t *items, size_t n,
                                      rk_answer_fn answer, uintptr_t arg) {
    int64_t now_ms = rk_now_ms();
    if (n > RK_CHECK_ASYNC_MAX || !rk_check_async_available()) {
        rk_check_run(items, n, -1);
        return answer(req, items, n, now_ms, arg);
    }
    pending_t *p = rk_request_job_area(req);
    memcpy(p->items, items, n * sizeof *items);
    p->n = n;
    p->now_ms = now_ms;
    p->answer = answer;
    p->arg = arg;
    p->req = req;
    /* What needs no store (rules switched off, remembered denials) is answered at once. */
    if (rk_check_prepare(&p->job, p->items, n))
        return answer(req, p->items, n, now_ms, arg);
    req->resume = answer_resumed;
    MHD_suspend_connection(req->conn); /* before the store can resume it */
    rk_check_submit(&p->job, decided, p);
    return MHD_YES;
}
