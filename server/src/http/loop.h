/*
 * loop.h — the data plane's event loops, when the store talks to a server.
 *
 * With a store that answers asynchronously (Redis, Redis Cluster), the
 * data plane runs one event loop per thread instead of libmicrohttpd's
 * own threads. Each loop owns one libmicrohttpd daemon (each with its
 * listening socket on the port, listen.h) and the store's connections for
 * that thread: the
 * checks a round of HTTP work submits go out together when the round ends
 * (on Redis in one pipelined write, behind those still out; on a cluster
 * in one batch, one pipelined write per node, once the batch before it is
 * answered), the loop reads the replies as they come, and the requests
 * they parked (rk_request_park) are resumed by the same thread. Nothing
 * crosses threads on the way: no queue, no lock, no wake-up of another
 * thread.
 *
 * A store plugs in through an rk_loop_source_t on the loop of the calling
 * thread (rk_loop_source()).
 */
#ifndef RK_LOOP_H
#define RK_LOOP_H

#include "../common.h"

typedef struct rk_loop rk_loop_t;

typedef struct rk_loop_source rk_loop_source_t;

/* What a store keeps on a loop. Every callback runs on the loop's thread. */
struct rk_loop_source {
    const void *owner;   /* who keeps it (rk_loop_source) */
    int fd;              /* watched for reading; -1: none now */
    int64_t deadline_ms; /* rk_mono_ms() at which on_ready() is called anyway; 0: none */
    /* fd is readable (or hung up), or the deadline passed (readable false);
     * NULL for a source with neither. */
    void (*on_ready)(rk_loop_source_t *src, bool readable);
    /* A round of HTTP work ended: send what it submitted. */
    void (*after_round)(rk_loop_source_t *src);
    /* The loop ends: answer what is pending and free the source. */
    void (*close)(rk_loop_source_t *src);
};

/* The loop the calling thread runs, or NULL. */
rk_loop_t *rk_loop_current(void);

/*
 * The source proto->owner keeps on the calling thread's loop, made on first
 * use: a zeroed block of size bytes (the source first, the owner's own
 * fields after it) starting as a copy of *proto. Its close() frees it.
 * NULL off a loop, when out of memory, or when another owner holds the
 * loop's one source.
 */
rk_loop_source_t *rk_loop_source(const rk_loop_source_t *proto, size_t size);

/* ---- for server.c ---- */

struct MHD_Daemon;

typedef struct rk_loops rk_loops_t;

/*
 * Starts n loops, each running one of daemons[0..n) (started without an
 * internal thread, with MHD_USE_EPOLL and MHD_USE_ITC). NULL when a thread
 * cannot be started.
 */
rk_loops_t *rk_loops_start(struct MHD_Daemon *const *daemons, unsigned n);

/*
 * Tells loop that one of its connections was resumed (after
 * MHD_resume_connection): libmicrohttpd 0.9.75, run from an external loop,
 * does not make its epoll descriptor report a resume. On the loop's own
 * thread, the daemon runs again before the loop waits; from another thread,
 * the loop is woken.
 */
void rk_loop_resumed(rk_loop_t *loop);

/*
 * Counts the requests parked on loop (rk_request_park), delta +1 or -1, on
 * the loop's thread. A parked request keeps libmicrohttpd's timeout at 0;
 * while some are, the loop waits for its source instead, a millisecond at
 * most.
 */
void rk_loop_parked(rk_loop_t *loop, int delta);

/* Stops accepting new connections (each loop quiesces its own daemon). */
void rk_loops_quiesce(rk_loops_t *loops);

/* Ends the loops (each closes its source) and joins them; the daemons are left to stop. */
void rk_loops_stop(rk_loops_t *loops);

#endif
