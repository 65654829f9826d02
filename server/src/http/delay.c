/*
 * delay.c — see delay.h. A binary min-heap of pending answers, ordered by
 * due time, under one mutex that only the handlers that delay and the
 * timer thread take; a check that is not shaped never touches it.
 */
#include "delay.h"

#include <pthread.h>
#include <time.h>

typedef struct {
    int64_t due_ms; /* monotonic */
    rk_request_t *req;
    struct MHD_Response *resp;
    unsigned status;
} pending_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pending_t heap[RK_DELAY_MAX_PENDING];
static size_t heap_len;
static bool running;
static pthread_t timer;

static void swap(size_t a, size_t b) {
    pending_t t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void push(pending_t p) {
    size_t i = heap_len++;
    heap[i] = p;
    while (i > 0 && heap[(i - 1) / 2].due_ms > heap[i].due_ms) {
        swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static pending_t pop(void) {
    pending_t top = heap[0];
    heap[0] = heap[--heap_len];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l].due_ms < heap[m].due_ms)
            m = l;
        if (r < heap_len && heap[r].due_ms < heap[m].due_ms)
            m = r;
        if (m == i)
            break;
        swap(i, m);
        i = m;
    }
    return top;
}

/* Queues the response of a suspended connection and resumes it. */
static void answer(pending_t *p) {
    rk_reply_response(p->req, p->status, p->resp);
    rk_request_resume(p->req);
}

static void *timer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (running || heap_len > 0) {
        if (heap_len == 0) {
            pthread_cond_wait(&wake, &lock);
            continue;
        }
        int64_t now = rk_mono_ms();
        if (running && heap[0].due_ms > now) {
            struct timespec ts;
            rk_timespec_in(&ts, CLOCK_MONOTONIC, heap[0].due_ms - now);
            pthread_cond_timedwait(&wake, &lock, &ts);
            continue;
        }
        pending_t p = pop();
        pthread_mutex_unlock(&lock);
        answer(&p);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

rk_status_t rk_delay_start(void) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &attr);
    pthread_condattr_destroy(&attr);
    running = true;
    if (pthread_create(&timer, NULL, timer_main, NULL) != 0) {
        running = false;
        return RK_ERR;
    }
    return RK_OK;
}

void rk_delay_stop(void) {
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    running = false;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(timer, NULL);
}

enum MHD_Result rk_reply_later(rk_request_t *req, unsigned status, struct MHD_Response *resp,
                               int64_t delay_ms) {
    if (delay_ms <= 0)
        return rk_reply_response(req, status, resp);
    pthread_mutex_lock(&lock);
    if (!running || heap_len >= RK_DELAY_MAX_PENDING) {
        pthread_mutex_unlock(&lock);
        return rk_reply_response(req, status, resp);
    }
    /* Suspend before the timer can see it: it resumes only suspended connections. */
    MHD_suspend_connection(req->conn);
    push((pending_t){rk_mono_ms() + delay_ms, req, resp, status});
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    return MHD_YES;
}
