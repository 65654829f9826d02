/*
 * decide.c — see decide.h.
 */
#include "decide.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "../stats/stats.h"

/*
 * A check decided while its request is parked. Everything it needs
 * lives until the request completes: in the request's job area, or, when
 * its items do not fit there (a batch, a request many rules match), in a
 * block of rk_request_alloc(). The items go to the store in jobs of
 * RK_CHECK_ASYNC_MAX, all submitted in the same round of the event loop so
 * that they share one round trip; the last job answered resumes the
 * connection.
 */
typedef struct {
    rk_check_item_t *items; /* n copies, after the jobs */
    size_t n;
    int64_t now_ms;
    rk_answer_fn answer;
    uintptr_t arg;
    rk_request_t *req;
    atomic_size_t waiting; /* jobs submitted and not answered yet */
    rk_check_job_t jobs[];
} pending_t;

/* Where the items start after njobs jobs. */
static size_t items_offset(size_t njobs) {
    size_t at = offsetof(pending_t, jobs) + njobs * sizeof(rk_check_job_t);
    size_t align = _Alignof(rk_check_item_t);
    return (at + align - 1) / align * align;
}

_Static_assert(offsetof(pending_t, jobs) + sizeof(rk_check_job_t) + _Alignof(rk_check_item_t) +
                       RK_CHECK_ASYNC_MAX * sizeof(rk_check_item_t) <=
                   RK_REQUEST_JOB_AREA,
               "a check of one job fits the job area");

/* Called again once resumed (server.c): the items are decided. */
static enum MHD_Result answer_resumed(rk_request_t *req) {
    pending_t *p = req->resume_ctx;
    return p->answer(req, p->items, p->n, p->now_ms, p->arg);
}

/*
 * A job is decided: the last one counts the checks (a request's rules may
 * span jobs: its outcome is known only now) and wakes the connection up.
 */
static void decided(void *ctx) {
    pending_t *p = ctx;
    if (atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_acq_rel) == 1) {
        rk_stats_count_checks(p->items, p->n);
        rk_request_resume(p->req); /* the last touch: the request may end after it */
    }
}

/* Decides items on this thread, RK_CHECK_MAX_ITEMS at a time, and answers. */
static enum MHD_Result decide_here(rk_request_t *req, rk_check_item_t *items, size_t n,
                                   int64_t now_ms, rk_answer_fn answer, uintptr_t arg) {
    for (size_t start = 0; start < n; start += RK_CHECK_MAX_ITEMS)
        rk_check_run(items + start, n - start < RK_CHECK_MAX_ITEMS ? n - start : RK_CHECK_MAX_ITEMS,
                     -1);
    rk_stats_count_checks(items, n);
    return answer(req, items, n, now_ms, arg);
}

enum MHD_Result rk_decide_then_answer(rk_request_t *req, rk_check_item_t *items, size_t n,
                                      rk_answer_fn answer, uintptr_t arg) {
    int64_t now_ms = rk_now_ms();
    if (!rk_check_async_available())
        return decide_here(req, items, n, now_ms, answer, arg);
    size_t njobs = (n + RK_CHECK_ASYNC_MAX - 1) / RK_CHECK_ASYNC_MAX;
    size_t size = items_offset(njobs) + n * sizeof *items;
    pending_t *p =
        size <= RK_REQUEST_JOB_AREA ? rk_request_job_area(req) : rk_request_alloc(req, size);
    if (!p)
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    p->items = (rk_check_item_t *)(void *)((char *)p + items_offset(njobs));
    memcpy(p->items, items, n * sizeof *items);
    p->n = n;
    p->now_ms = now_ms;
    p->answer = answer;
    p->arg = arg;
    p->req = req;
    /* What needs no store (rules switched off, remembered denials) is decided here;
     * only the jobs that still need the store are kept, from jobs[0] on. */
    int64_t started_ns = rk_check_recall(p->items, n);
    size_t submit = 0;
    for (size_t start = 0; start < n; start += RK_CHECK_ASYNC_MAX) {
        size_t len = n - start < RK_CHECK_ASYNC_MAX ? n - start : RK_CHECK_ASYNC_MAX;
        if (!rk_check_prepare(&p->jobs[submit], p->items + start, len, started_ns))
            submit++;
    }
    if (submit == 0) {
        rk_stats_count_checks(p->items, n);
        return answer(req, p->items, n, now_ms, arg);
    }
    atomic_init(&p->waiting, submit);
    req->resume = answer_resumed;
    req->resume_ctx = p;
    rk_request_park(req);               /* before the store can resume it */
    for (size_t j = 0; j < submit; j++) /* p may be gone once the last is answered */
        rk_check_submit(&p->jobs[j], decided, p);
    return MHD_YES;
}
