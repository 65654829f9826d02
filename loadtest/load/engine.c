/*
 * engine.c — worker threads driving keep-alive connections with epoll.
 *
 * Each worker owns connections [first, first + n) of the run's N. In the
 * open loop, connection g sends its k-th request at t0 + (k*N + g) / rate:
 * together they send at t0 + i/rate. A request whose intended time has
 * passed is sent at once, and its latency is counted from the intended
 * time, so time spent queued behind a slow answer counts.
 *
 * A connection the server closes after an answer is reopened at once and
 * counted in reconnects; one that fails (refused, reset, unreadable
 * answer) loses its requests in flight, which are counted as errors, and is
 * reopened after RETRY_NS. After the window, each worker waits up to
 * DRAIN_NS for the answers still due: a request that still has none is
 * counted unanswered (and an error).
 */
#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "request.h"
#include "response.h"

#define RETRY_NS 10000000LL     /* reopen a failed connection after 10 ms */
#define MAX_WAIT_NS 100000000LL /* wake at least every 100 ms */
#define DRAIN_NS 1000000000LL   /* after the window, answers in flight are awaited 1 s */
#define READ_CHUNK 16384
#define READ_MAX (2 * LT_RESPONSE_MAX) /* room for the longest answer, its head and more */
#define EVENTS 256
#define LEASE_MAX 320 /* the longest lease text kept (ratekitd's are under 300) */

typedef enum { CONN_CLOSED, CONN_CONNECTING, CONN_OPEN } conn_state_t;

typedef struct {
    lt_worker_t *worker;
    const lt_url_t *url;
    long global; /* index among all the run's connections */
    int fd;
    conn_state_t state;
    bool watching_out;               /* EPOLLOUT registered */
    int64_t retry_at_ns;             /* when CONN_CLOSED: reopen from then on */
    uint64_t sequence;               /* open loop: requests sent (or skipped) so far */
    int64_t starts[LT_MAX_PIPELINE]; /* in flight, oldest first, as a ring */
    int head, inflight;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf;
    size_t wlen, woff, wcap;
    char lease[LEASE_MAX]; /* lease target: the lease held, "" for none */
    bool releasing_at_end; /* lease target: its request in flight is the drain's release */
} conn_t;

struct lt_worker {
    lt_run_t *run;
    pthread_t thread;
    int epoll_fd;
    conn_t *conns;
    int nconns;
    int outstanding;        /* requests in flight over all its connections */
    int closed;             /* connections waiting to be reopened */
    int64_t last_answer_ns; /* when its last answer was read; 0 before the first */
    int64_t finished_ns;    /* when its measured window ended: see worker_main */
    uint64_t leases_lost;   /* lease target: acquires lost with their connection */
    bool draining;          /* after the window: answers are read, not counted */
    uint64_t unanswered;    /* while draining: requests lost with their connection */
    lt_rng_t rng;
    lt_stats_t stats;
};

int64_t lt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Owner-only increment of a counter others may read. */
static void bump(_Atomic uint64_t *c, uint64_t by) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* Whether an event at now counts: every counter covers the measured window
 * only (unanswered requests, known after it, aside). */
static bool in_window(const lt_worker_t *w, int64_t now) {
    return !w->draining && now >= w->run->measure_ns && now <= w->run->end_ns;
}

/* ---- connections ---------------------------------------------------------- */

static void watch(conn_t *c, bool want_out) {
    if (c->watching_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->worker->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
    c->watching_out = want_out;
}

/* Starts a non-blocking connect; on failure, schedules a retry. */
static void conn_open(conn_t *c, int64_t now) {
    c->fd = socket(c->url->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->retry_at_ns = now + RETRY_NS;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)&c->url->addr, c->url->addrlen) != 0 &&
        errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        bump(&c->worker->stats.errors, in_window(c->worker, now));
        c->retry_at_ns = now + RETRY_NS;
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(c->worker->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
    c->watching_out = true;
    c->state = CONN_CONNECTING;
    c->worker->closed--;
}

/*
 * Closes the connection. failed: the requests in flight are lost and
 * counted as errors (at least one error for the failure itself), and the
 * connection is reopened after RETRY_NS; otherwise it is reopened at once.
 */
static void conn_close(conn_t *c, int64_t now, bool failed) {
    lt_worker_t *w = c->worker;
    if (failed && in_window(w, now))
        bump(&w->stats.errors, c->inflight > 0 ? (uint64_t)c->inflight : 1);
    if (w->draining && !c->releasing_at_end)
        w->unanswered += (uint64_t)c->inflight;
    /* An acquire lost with its connection may have been granted: its lease,
     * unknown, is left to expire. A lease already given is kept: it is not
     * bound to a connection, and the reopened one releases it. */
    if (failed && w->run->opts->target == LT_TARGET_LEASE && !c->lease[0] && c->inflight > 0)
        w->leases_lost++;
    c->releasing_at_end = false;
    if (c->fd >= 0) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    w->outstanding -= c->inflight;
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->inflight = c->head = 0;
    c->rlen = c->wlen = c->woff = 0;
    c->retry_at_ns = failed ? now + RETRY_NS : now;
    w->closed++;
}

/* Writes what is pending; watches for writability when the socket is full. */
static void conn_flush(conn_t *c, int64_t now) {
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(c, true);
            return;
        }
        conn_close(c, now, true);
        return;
    }
    c->wlen = c->woff = 0;
    watch(c, false);
}

/* The open loop's intended time of the connection's next request. */
static int64_t next_due_ns(const conn_t *c) {
    const lt_run_t *run = c->worker->run;
    double i = (double)c->sequence * (double)run->opts->connections + (double)c->global;
    return run->t0_ns + (int64_t)(i * 1e9 / run->opts->rate);
}

/* Takes one request from the --requests budget; false when none is left. */
static bool take_budget(lt_run_t *run) {
    if (!run->opts->requests)
        return true;
    return atomic_fetch_sub_explicit(&run->budget, 1, memory_order_relaxed) > 0;
}

/* Queues as many requests as the pipeline depth and the schedule allow, and sends them. */
static void conn_fill(conn_t *c, int64_t now) {
    lt_worker_t *w = c->worker;
    lt_run_t *run = w->run;
    const lt_options_t *o = run->opts;
    if (c->state != CONN_OPEN || now >= run->end_ns || w->draining)
        return;
    bool queued = false;
    while (c->inflight < o->pipeline) {
        int64_t start = now;
        if (o->rate > 0) {
            start = next_due_ns(c);
            if (start > now)
                break;
        }
        if (!take_budget(run))
            break;
        if (c->wcap - c->wlen < LT_REQUEST_MAX) {
            size_t cap = c->wcap * 2;
            char *grown = realloc(c->wbuf, cap);
            if (!grown)
                break;
            c->wbuf = grown;
            c->wcap = cap;
        }
        long key = lt_keys_next(&run->keys, &w->rng);
        size_t len = lt_request_build(o, c->url, key, c->lease, c->wbuf + c->wlen);
        if (len == 0)
            break;
        c->wlen += len;
        c->starts[(c->head + c->inflight) % LT_MAX_PIPELINE] = start;
        c->inflight++;
        w->outstanding++;
        c->sequence++;
        queued = true;
    }
    if (queued)
        conn_flush(c, now);
}

/* ---- answers -------------------------------------------------------------- */

/* Microseconds from start_ns to now, rounded; 0 if now is earlier. */
static uint64_t waited_us(int64_t start_ns, int64_t now) {
    int64_t ns = now - start_ns;
    return ns > 0 ? (uint64_t)(ns + 500) / 1000 : 0;
}

/* Counts one answer to the request sent (or, open loop, due) at start_ns. */
static void record(lt_worker_t *w, const lt_response_t *r, int64_t start_ns, int64_t now) {
    lt_run_t *run = w->run;
    lt_stats_t *s = &w->stats;
    bump(&s->answered, 1);
    /* Counted by when the answer came: a saturated open loop answers, in the
     * window, requests that were due before it, and their latency counts. */
    if (!in_window(w, now))
        return;
    lt_hist_record(&s->hist, waited_us(start_ns, now));
    bump(&s->completed, 1);
    if (r->status >= 200 && r->status < 300)
        bump(&s->status_2xx, 1);
    else if (r->status >= 400 && r->status < 500)
        bump(&s->status_4xx, 1);
    else if (r->status >= 500 && r->status < 600)
        bump(&s->status_5xx, 1);
    else
        bump(&s->status_other, 1);
    bool auth = run->opts->target == LT_TARGET_AUTH;
    if (run->opts->target == LT_TARGET_LEASE && lt_response_released(r))
        bump(&s->released, 1);
    else if (lt_response_says(r, true) || (auth && r->status == 200))
        bump(&s->allowed, 1);
    else if (lt_response_says(r, false) || r->status == 429 || (auth && r->status == 403))
        bump(&s->denied, 1);
}

/*
 * The lease target's answer. One request is out at a time, and it was the
 * release of the lease held if there is one: after it, the connection
 * holds nothing; after an acquire, the lease it was given, if any, which
 * its next request releases.
 */
static void lease_answered(conn_t *c, const lt_response_t *r) {
    lt_worker_t *w = c->worker;
    if (c->lease[0]) {
        c->lease[0] = '\0';
        if (w->draining && lt_response_released(r))
            bump(&w->stats.released_at_end, 1);
    } else {
        lt_response_lease(r, c->lease, sizeof c->lease);
    }
    c->releasing_at_end = false;
}

/* Reads what arrived and handles every complete answer in it. */
static void conn_read(conn_t *c, int64_t now) {
    lt_worker_t *w = c->worker;
    bool eof = false; /* the server closed: an answer without a length ends here */
    for (;;) {
        if (c->rcap - c->rlen < READ_CHUNK / 2) {
            size_t cap = c->rcap * 2;
            char *grown = cap <= READ_MAX ? realloc(c->rbuf, cap) : NULL;
            if (!grown) {
                conn_close(c, now, true);
                return;
            }
            c->rbuf = grown;
            c->rcap = cap;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            conn_close(c, now, true);
            return;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        c->rlen += (size_t)n;
        if ((size_t)n < c->rcap - c->rlen + (size_t)n)
            break; /* the socket is drained */
    }
    size_t used = 0;
    bool close_after = false;
    while (used < c->rlen && !close_after) {
        lt_response_t r;
        long len = lt_response_parse(c->rbuf + used, c->rlen - used, eof, &r);
        if (len == 0)
            break;
        if (len < 0 || c->inflight == 0) {
            conn_close(c, now, true);
            return;
        }
        record(w, &r, c->starts[c->head], now);
        w->last_answer_ns = now;
        if (w->run->opts->target == LT_TARGET_LEASE)
            lease_answered(c, &r);
        c->head = (c->head + 1) % LT_MAX_PIPELINE;
        c->inflight--;
        w->outstanding--;
        used += (size_t)len;
        close_after = r.close;
    }
    if (used) {
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
    }
    if (close_after || eof) {
        /* The server closed: an error only when answers were still due. */
        if (close_after)
            bump(&w->stats.reconnects, in_window(w, now));
        conn_close(c, now, c->inflight > 0);
        return;
    }
    conn_fill(c, now);
}

/* A connect finished (or failed). */
static void conn_connected(conn_t *c, int64_t now) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_close(c, now, true);
        return;
    }
    c->state = CONN_OPEN;
    watch(c, false);
    conn_fill(c, now);
}

/* ---- the worker loop ------------------------------------------------------ */

/*
 * Reopens the connections whose retry time has come and, open loop, sends
 * what is due. Returns the next time something is due (INT64_MAX if none).
 */
static int64_t tend(lt_worker_t *w, int64_t now) {
    const lt_options_t *o = w->run->opts;
    int64_t next = INT64_MAX;
    if (o->rate <= 0 && w->closed == 0)
        return next;
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (c->state == CONN_CLOSED) {
            if (c->retry_at_ns <= now)
                conn_open(c, now);
            else if (c->retry_at_ns < next)
                next = c->retry_at_ns;
        }
        if (o->rate > 0 && c->state == CONN_OPEN) {
            conn_fill(c, now);
            if (c->state == CONN_OPEN && c->inflight < o->pipeline) {
                int64_t due = next_due_ns(c);
                if (due < next)
                    next = due;
            }
        }
    }
    return next;
}

static bool budget_spent(const lt_worker_t *w) {
    return w->run->opts->requests &&
           atomic_load_explicit(&w->run->budget, memory_order_relaxed) <= 0;
}

/* Waits for events until at most `wait` ns from now, and handles them. */
static void poll_once(lt_worker_t *w, int64_t wait) {
    struct epoll_event events[EVENTS];
    if (wait > MAX_WAIT_NS)
        wait = MAX_WAIT_NS;
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int n = epoll_pwait2(w->epoll_fd, events, EVENTS, &ts, NULL);
    int64_t now = lt_now_ns();
    for (int i = 0; i < n; i++) {
        conn_t *c = events[i].data.ptr;
        if (c->state == CONN_CONNECTING) {
            conn_connected(c, now);
            continue;
        }
        if (c->state == CONN_OPEN && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            conn_read(c, now);
        if (c->state == CONN_OPEN && (events[i].events & EPOLLOUT))
            conn_flush(c, now);
    }
}

/*
 * Open loop, at the window's end: each request due before it and not
 * answered, in flight or not yet sent (its connection still waiting), is
 * recorded with the time it has waited so far, end - due, a lower bound.
 * Answers are counted by when they come, so without this a stall at the
 * end would leave its requests out of the percentiles. They are not
 * answers: completed does not count them.
 */
static void record_waiting(lt_worker_t *w) {
    lt_run_t *run = w->run;
    uint64_t waiting = 0;
    if (run->opts->rate <= 0)
        return;
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        for (int k = 0; k < c->inflight; k++, waiting++)
            lt_hist_record(&w->stats.hist,
                           waited_us(c->starts[(c->head + k) % LT_MAX_PIPELINE], run->end_ns));
        for (int64_t due; (due = next_due_ns(c)) < run->end_ns && take_budget(run); waiting++) {
            lt_hist_record(&w->stats.hist, waited_us(due, run->end_ns));
            c->sequence++;
        }
    }
    bump(&w->stats.waiting_at_end, waiting);
}

/* Lease target, after the window: sends the release of a lease held by a
 * connection with nothing in flight. */
static void conn_release_at_end(conn_t *c, int64_t now) {
    size_t len = lt_request_build(c->worker->run->opts, c->url, 0, c->lease, c->wbuf);
    if (len == 0)
        return;
    c->wlen = len;
    c->woff = 0;
    c->starts[c->head] = now;
    c->inflight = 1;
    c->worker->outstanding++;
    c->releasing_at_end = true;
    conn_flush(c, now);
}

/*
 * Lease target, after the window: reopens the connections that hold a
 * lease and releases it. Returns whether a lease is still held, and the
 * next reopening time in *next.
 */
static bool release_held(lt_worker_t *w, int64_t now, int64_t *next) {
    bool held = false;
    *next = INT64_MAX;
    if (w->run->opts->target != LT_TARGET_LEASE)
        return false;
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (!c->lease[0])
            continue;
        held = true;
        if (c->state == CONN_CLOSED && c->retry_at_ns <= now)
            conn_open(c, now);
        else if (c->state == CONN_CLOSED && c->retry_at_ns < *next)
            *next = c->retry_at_ns;
        if (c->state == CONN_OPEN && c->inflight == 0)
            conn_release_at_end(c, now);
    }
    return held;
}

/*
 * After the window: waits up to DRAIN_NS for the answers still due. They
 * count nowhere (they came after the window); what this tells is which
 * requests never get one: those still in flight at the end, or lost with
 * a connection meanwhile, are counted unanswered, and errors. The lease
 * target also releases every lease still held, so that a run leaves none
 * behind; those it cannot (connection broken, no answer) and the acquires
 * lost unanswered are counted in leases_left.
 */
static void drain(lt_worker_t *w) {
    w->draining = true;
    int64_t deadline = lt_now_ns() + DRAIN_NS, next;
    for (int64_t now = lt_now_ns(); now < deadline; now = lt_now_ns()) {
        bool held = release_held(w, now, &next);
        if (w->outstanding == 0 && !held)
            break;
        poll_once(w, (next < deadline ? next : deadline) - now);
    }
    uint64_t leases_left = w->leases_lost;
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (!c->releasing_at_end)
            w->unanswered += (uint64_t)c->inflight;
        leases_left += c->lease[0] || (w->run->opts->target == LT_TARGET_LEASE && c->inflight);
    }
    bump(&w->stats.unanswered, w->unanswered);
    bump(&w->stats.errors, w->unanswered);
    bump(&w->stats.leases_left, leases_left);
}

static void *worker_main(void *arg) {
    lt_worker_t *w = arg;
    lt_run_t *run = w->run;
    if (run->opts->rate > 0)
        prctl(PR_SET_TIMERSLACK, 1000UL); /* wake within 1 µs of a due request */
    int64_t now = lt_now_ns();
    for (int i = 0; i < w->nconns; i++)
        conn_open(&w->conns[i], now);
    for (;;) {
        now = lt_now_ns();
        if (now >= run->end_ns) {
            w->finished_ns = run->end_ns;
            record_waiting(w);
            break;
        }
        if (budget_spent(w) && w->outstanding == 0) {
            /* --requests: done at its last answer, not when the loop noticed */
            w->finished_ns = w->last_answer_ns ? w->last_answer_ns : now;
            break;
        }
        int64_t next = tend(w, now);
        int64_t wait = run->end_ns - now;
        if (next != INT64_MAX && next - now < wait)
            wait = next > now ? next - now : 0;
        poll_once(w, wait);
    }
    drain(w);
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
    atomic_fetch_sub(&run->running, 1);
    return NULL;
}

/* ---- the run -------------------------------------------------------------- */

int lt_run_start(lt_run_t *run, const lt_options_t *o) {
    memset(run, 0, sizeof *run);
    run->opts = o;
    if (lt_keys_init(&run->keys, o->dist, o->keys, o->zipf_s) != 0) {
        fprintf(stderr, "ratekit-load: out of memory for %ld keys\n", o->keys);
        return -1;
    }
    run->nworkers = o->threads;
    run->workers = calloc((size_t)o->threads, sizeof *run->workers);
    conn_t *conns = calloc((size_t)o->connections, sizeof *conns);
    if (!run->workers || !conns) {
        free(conns);
        fprintf(stderr, "ratekit-load: out of memory\n");
        return -1;
    }
    atomic_store(&run->budget, o->requests);
    run->t0_ns = lt_now_ns();
    run->measure_ns = run->t0_ns + (int64_t)(o->warmup_s * 1e9);
    run->end_ns = run->measure_ns + (int64_t)(o->duration_s * 1e9);
    uint64_t seed = (uint64_t)run->t0_ns ^ ((uint64_t)getpid() << 32);
    int next_conn = 0;
    for (int t = 0; t < o->threads; t++) {
        lt_worker_t *w = &run->workers[t];
        w->run = run;
        w->conns = conns + next_conn;
        w->nconns = o->connections / o->threads + (t < o->connections % o->threads);
        w->closed = w->nconns;
        lt_rng_seed(&w->rng, seed + (uint64_t)t);
        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < w->nconns; i++) {
            conn_t *c = &w->conns[i];
            c->worker = w;
            c->global = next_conn + i;
            c->url = &o->urls[c->global % o->nurls];
            c->fd = -1;
            c->rcap = c->wcap = READ_CHUNK;
            c->rbuf = malloc(c->rcap);
            c->wbuf = malloc(c->wcap);
            if (!c->rbuf || !c->wbuf || w->epoll_fd < 0) {
                fprintf(stderr, "ratekit-load: out of memory or descriptors\n");
                return -1;
            }
        }
        next_conn += w->nconns;
    }
    atomic_store(&run->running, o->threads);
    for (int t = 0; t < o->threads; t++)
        if (pthread_create(&run->workers[t].thread, NULL, worker_main, &run->workers[t]) != 0) {
            fprintf(stderr, "ratekit-load: cannot start a thread\n");
            exit(1);
        }
    return 0;
}

int lt_run_active(lt_run_t *run) {
    return atomic_load(&run->running) > 0;
}

uint64_t lt_run_answered(const lt_run_t *run) {
    uint64_t n = 0;
    for (int t = 0; t < run->nworkers; t++)
        n += atomic_load_explicit(&run->workers[t].stats.answered, memory_order_relaxed);
    return n;
}

/* Reads a counter of every worker and sums it. */
#define SUM(field)                                                                                 \
    do {                                                                                           \
        t->field = 0;                                                                              \
        for (int i = 0; i < run->nworkers; i++)                                                    \
            t->field += atomic_load_explicit(&run->workers[i].stats.field, memory_order_relaxed);  \
    } while (0)

void lt_run_totals(const lt_run_t *run, lt_totals_t *t) {
    memset(t, 0, sizeof *t);
    t->cpu_s = t->store_cpu_s = -1;
    SUM(completed);
    SUM(status_2xx);
    SUM(status_4xx);
    SUM(status_5xx);
    SUM(status_other);
    SUM(errors);
    SUM(unanswered);
    SUM(waiting_at_end);
    SUM(allowed);
    SUM(denied);
    SUM(released);
    SUM(released_at_end);
    SUM(leases_left);
    SUM(reconnects);
    static _Thread_local lt_hist_t merged;
    lt_hist_reset(&merged);
    for (int i = 0; i < run->nworkers; i++)
        lt_hist_merge(&merged, &run->workers[i].stats.hist);
    t->p50 = lt_hist_percentile(&merged, 50);
    t->p90 = lt_hist_percentile(&merged, 90);
    t->p99 = lt_hist_percentile(&merged, 99);
    t->p999 = lt_hist_percentile(&merged, 99.9);
    t->max = atomic_load_explicit(&merged.max_us, memory_order_relaxed);
    t->mean_us = lt_hist_mean(&merged);
    int64_t end = run->finished_ns ? run->finished_ns : lt_now_ns();
    if (end > run->end_ns)
        end = run->end_ns;
    t->elapsed_s = end > run->measure_ns ? (double)(end - run->measure_ns) / 1e9 : 0;
    t->throughput = t->elapsed_s > 0 ? (double)t->completed / t->elapsed_s : 0;
    t->scheduled = run->opts->rate > 0 ? run->opts->rate * t->elapsed_s : 0;
}

void lt_run_join(lt_run_t *run) {
    int64_t finished = run->measure_ns;
    for (int t = 0; t < run->nworkers; t++) {
        pthread_join(run->workers[t].thread, NULL);
        if (run->workers[t].finished_ns > finished)
            finished = run->workers[t].finished_ns;
    }
    run->finished_ns = finished;
}

void lt_run_free(lt_run_t *run) {
    if (!run->workers)
        return;
    for (int t = 0; t < run->nworkers; t++) {
        lt_worker_t *w = &run->workers[t];
        for (int i = 0; i < w->nconns; i++) {
            free(w->conns[i].rbuf);
            free(w->conns[i].wbuf);
        }
        if (w->epoll_fd >= 0)
            close(w->epoll_fd);
    }
    free(run->workers[0].conns);
    free(run->workers);
    run->workers = NULL;
    lt_keys_free(&run->keys);
}
