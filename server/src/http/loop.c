/*
 * loop.c — see loop.h.
 *
 * One round of a loop: poll the daemon's epoll descriptor, the wake-up
 * descriptor and the source's socket, at most until libmicrohttpd's timeout
 * or the source's deadline; let the source read its replies (which resumes
 * connections); run the daemon (which answers the resumed connections and
 * reads new requests, whose checks the source queues); let the source send
 * what the round queued.
 */
#include "loop.h"

#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { RUNNING, QUIESCING, STOPPING };

enum { PARKED_WAIT_MS = 1 }; /* the longest wait while requests are parked */

struct rk_loop {
    struct MHD_Daemon *daemon;
    int epoll_fd;       /* the daemon's */
    int wake_fd;        /* eventfd: the phase changed */
    _Atomic int *phase; /* the loops' shared phase */
    bool quiesced;
    bool resumed;    /* a connection was resumed on this thread since the daemon last ran */
    unsigned parked; /* requests parked on this loop, not woken yet */
    rk_loop_source_t *source;
    pthread_t thread;
    bool started;
};

struct rk_loops {
    _Atomic int phase;
    unsigned n;
    rk_loop_t loop[];
};

static _Thread_local rk_loop_t *current;

/* Wakes a loop (an eventfd write fails only on overflow: it is awake anyway). */
static void poke(int wake_fd) {
    uint64_t one = 1;
    ssize_t n = write(wake_fd, &one, sizeof one);
    (void)n;
}

static void drain(int wake_fd) {
    uint64_t count;
    ssize_t n = read(wake_fd, &count, sizeof count);
    (void)n;
}

rk_loop_t *rk_loop_current(void) {
    return current;
}

rk_loop_source_t *rk_loop_source(const rk_loop_source_t *proto, size_t size) {
    rk_loop_t *lp = current;
    if (!lp)
        return NULL;
    if (lp->source)
        return lp->source->owner == proto->owner ? lp->source : NULL;
    rk_loop_source_t *src = calloc(1, size);
    if (src) {
        *src = *proto;
        lp->source = src;
    }
    return src;
}

/* How long a poll may wait: libmicrohttpd's timeout and the source's deadline. */
static int poll_timeout(rk_loop_t *lp) {
    int64_t wait = -1;
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    if (MHD_get_timeout(lp->daemon, &mhd_ms) == MHD_YES)
        wait = mhd_ms > INT_MAX ? INT_MAX : (int64_t)mhd_ms;
    /* Parked requests make that 0 (the daemon would call their handlers in a
     * busy loop): wait for the source that wakes them, but not long, since
     * another connection may have work the daemon left for its next run. */
    if (wait == 0 && lp->parked > 0)
        wait = PARKED_WAIT_MS;
    rk_loop_source_t *src = lp->source;
    if (src && src->deadline_ms > 0) {
        int64_t left = src->deadline_ms - rk_mono_ms();
        if (left < 0)
            left = 0;
        if (wait < 0 || left < wait)
            wait = left;
    }
    return (int)wait;
}

static void one_round(rk_loop_t *lp) {
    rk_loop_source_t *src = lp->source;
    struct pollfd fds[3] = {{.fd = lp->epoll_fd, .events = POLLIN},
                            {.fd = lp->wake_fd, .events = POLLIN}};
    nfds_t nfds = 2;
    if (src && src->fd >= 0)
        fds[nfds++] = (struct pollfd){.fd = src->fd, .events = POLLIN};
    int ready = poll(fds, nfds, poll_timeout(lp));
    if (ready > 0 && fds[1].revents)
        drain(lp->wake_fd); /* the phase is read by the caller */
    if (src) {
        bool readable = nfds == 3 && ready > 0 && fds[2].revents;
        bool late = src->deadline_ms > 0 && rk_mono_ms() >= src->deadline_ms;
        if (readable || late)
            src->on_ready(src, readable);
    }
    do {
        lp->resumed = false; /* the run takes those resumed so far */
        MHD_run(lp->daemon);
        if (lp->source)
            lp->source->after_round(lp->source);
    } while (lp->resumed);
}

static void *loop_main(void *arg) {
    rk_loop_t *lp = arg;
    current = lp;
    for (;;) {
        int phase = atomic_load(lp->phase);
        if (phase == STOPPING)
            break;
        if (phase == QUIESCING && !lp->quiesced) {
            MHD_socket fd = MHD_quiesce_daemon(lp->daemon);
            if (fd != MHD_INVALID_SOCKET)
                close(fd);
            lp->quiesced = true;
        }
        one_round(lp);
    }
    if (lp->source) {
        rk_loop_source_t *src = lp->source;
        lp->source = NULL;
        src->close(src);
    }
    current = NULL;
    return NULL;
}

static void set_phase(rk_loops_t *loops, int phase) {
    atomic_store(&loops->phase, phase);
    for (unsigned i = 0; i < loops->n; i++)
        poke(loops->loop[i].wake_fd);
}

void rk_loop_resumed(rk_loop_t *loop) {
    if (loop == current)
        loop->resumed = true;
    else
        poke(loop->wake_fd);
}

void rk_loop_parked(rk_loop_t *loop, int delta) {
    loop->parked += (unsigned)delta;
}

rk_loops_t *rk_loops_start(struct MHD_Daemon *const *daemons, unsigned n) {
    rk_loops_t *loops = calloc(1, sizeof *loops + n * sizeof(rk_loop_t));
    if (!loops)
        return NULL;
    atomic_init(&loops->phase, RUNNING);
    loops->n = n;
    for (unsigned i = 0; i < n; i++)
        loops->loop[i].wake_fd = -1;
    for (unsigned i = 0; i < n; i++) {
        rk_loop_t *lp = &loops->loop[i];
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
        lp->daemon = daemons[i];
        lp->epoll_fd = info ? info->epoll_fd : -1;
        lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        lp->phase = &loops->phase;
        if (lp->epoll_fd < 0 || lp->wake_fd < 0 ||
            pthread_create(&lp->thread, NULL, loop_main, lp) != 0) {
            rk_loops_stop(loops);
            return NULL;
        }
        lp->started = true;
    }
    return loops;
}

void rk_loops_quiesce(rk_loops_t *loops) {
    if (loops)
        set_phase(loops, QUIESCING);
}

void rk_loops_stop(rk_loops_t *loops) {
    if (!loops)
        return;
    set_phase(loops, STOPPING);
    for (unsigned i = 0; i < loops->n; i++) {
        rk_loop_t *lp = &loops->loop[i];
        if (lp->started)
            pthread_join(lp->thread, NULL);
        if (lp->wake_fd >= 0)
            close(lp->wake_fd);
    }
    free(loops);
}
