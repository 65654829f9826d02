/*
 * deadline.c — see deadline.h.
 *
 * The socket is shut down, never closed, from the watchdog: libmicrohttpd
 * owns the descriptor, sees the end of its stream and closes it itself.
 * libmicrohttpd calls the close notification (rk_deadline_close, which
 * takes the list's lock) before it closes the descriptor, and the watchdog
 * holds that lock while it shuts one down: it never touches a number the
 * kernel has given to another connection.
 */
#include "deadline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "../common.h"

/* waiting_since while a request is being served: never past the deadline. */
#define NOT_WAITING INT64_MAX
/* How often the watchdog looks: a slow client is closed within this after its deadline. */
#define WATCH_INTERVAL_MS 500

struct rk_deadline {
    struct rk_deadline *prev, *next;
    struct deadline_list *list;
    int fd;
    bool shut;                     /* by the watchdog, under the list's lock: counted once */
    _Atomic int64_t waiting_since; /* coarse_ms() when it began waiting for a request */
};

typedef struct deadline_list {
    pthread_mutex_t lock;
    rk_deadline_t *head;
} deadline_list_t;

struct rk_deadlines {
    pthread_t thread;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* on CLOCK_MONOTONIC */
    bool stopping;
    int64_t timeout_ms;
    atomic_uint_fast64_t *timed_out;
    unsigned nlists;
    deadline_list_t lists[];
};

/* The coarse monotonic clock: a few ms of resolution, read without a system call
 * on every request. */
static int64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Shuts down the connections of list that waited past the deadline. */
static void sweep(rk_deadlines_t *ds, deadline_list_t *list, int64_t now) {
    pthread_mutex_lock(&list->lock);
    for (rk_deadline_t *d = list->head; d; d = d->next) {
        int64_t since = atomic_load_explicit(&d->waiting_since, memory_order_relaxed);
        if (d->shut || since == NOT_WAITING || now - since <= ds->timeout_ms)
            continue;
        d->shut = true;
        shutdown(d->fd, SHUT_RDWR);
        atomic_fetch_add_explicit(ds->timed_out, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&list->lock);
}

static void *watchdog(void *arg) {
    rk_deadlines_t *ds = arg;
    pthread_mutex_lock(&ds->stop_lock);
    while (!ds->stopping) {
        struct timespec until;
        rk_timespec_in(&until, CLOCK_MONOTONIC, WATCH_INTERVAL_MS);
        pthread_cond_timedwait(&ds->stop_cond, &ds->stop_lock, &until);
        if (ds->stopping)
            break;
        pthread_mutex_unlock(&ds->stop_lock);
        int64_t now = coarse_ms();
        for (unsigned i = 0; i < ds->nlists; i++)
            sweep(ds, &ds->lists[i], now);
        pthread_mutex_lock(&ds->stop_lock);
    }
    pthread_mutex_unlock(&ds->stop_lock);
    return NULL;
}

static void deadlines_free(rk_deadlines_t *ds, unsigned nlocks) {
    for (unsigned i = 0; i < nlocks; i++)
        pthread_mutex_destroy(&ds->lists[i].lock);
    pthread_cond_destroy(&ds->stop_cond);
    pthread_mutex_destroy(&ds->stop_lock);
    free(ds);
}

rk_deadlines_t *rk_deadlines_start(unsigned nlists, int64_t timeout_ms,
                                   atomic_uint_fast64_t *timed_out) {
    rk_deadlines_t *ds = calloc(1, sizeof *ds + nlists * sizeof ds->lists[0]);
    if (!ds)
        return NULL;
    ds->timeout_ms = timeout_ms;
    ds->timed_out = timed_out;
    ds->nlists = nlists;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ds->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ds->stop_lock, NULL);
    for (unsigned i = 0; i < nlists; i++)
        pthread_mutex_init(&ds->lists[i].lock, NULL);
    if (pthread_create(&ds->thread, NULL, watchdog, ds) != 0) {
        deadlines_free(ds, nlists);
        return NULL;
    }
    return ds;
}

void rk_deadlines_stop(rk_deadlines_t *ds) {
    if (!ds)
        return;
    pthread_mutex_lock(&ds->stop_lock);
    ds->stopping = true;
    pthread_cond_signal(&ds->stop_cond);
    pthread_mutex_unlock(&ds->stop_lock);
    pthread_join(ds->thread, NULL);
    deadlines_free(ds, ds->nlists);
}

rk_deadline_t *rk_deadline_open(rk_deadlines_t *ds, unsigned list, int fd) {
    rk_deadline_t *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    deadline_list_t *l = &ds->lists[list < ds->nlists ? list : 0];
    d->list = l;
    d->fd = fd;
    d->shut = false;
    d->prev = NULL;
    atomic_init(&d->waiting_since, coarse_ms());
    pthread_mutex_lock(&l->lock);
    d->next = l->head;
    if (l->head)
        l->head->prev = d;
    l->head = d;
    pthread_mutex_unlock(&l->lock);
    return d;
}

void rk_deadline_close(rk_deadline_t *d) {
    if (!d)
        return;
    deadline_list_t *l = d->list;
    pthread_mutex_lock(&l->lock);
    if (d->prev)
        d->prev->next = d->next;
    else
        l->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    pthread_mutex_unlock(&l->lock);
    free(d);
}

void rk_deadline_stop(rk_deadline_t *d) {
    if (d)
        atomic_store_explicit(&d->waiting_since, NOT_WAITING, memory_order_relaxed);
}

void rk_deadline_restart(rk_deadline_t *d) {
    if (d)
        atomic_store_explicit(&d->waiting_since, coarse_ms(), memory_order_relaxed);
}
