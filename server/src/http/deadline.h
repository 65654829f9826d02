/*
 * deadline.h — a whole-request deadline per connection, against slow
 * clients.
 *
 * libmicrohttpd 0.9.75's connection timeout counts from the last byte
 * received, so a client that trickles a byte within each timeout holds its
 * connection for ever, and a few thousand such clients hold every place
 * RATEKIT_MAX_CONNECTIONS leaves. Here a connection must deliver each
 * request whole (on the admin plane, its headers: an upload may be slow)
 * within the timeout of opening or of its previous answer, however it
 * trickles; past it, a watchdog thread shuts the socket down and
 * libmicrohttpd closes the connection.
 *
 * Each daemon (one per thread) has its own list, so that opening and
 * closing a connection takes no lock other threads use, and a request
 * writes one atomic in its connection's entry.
 */
#ifndef RK_HTTP_DEADLINE_H
#define RK_HTTP_DEADLINE_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct rk_deadlines rk_deadlines_t;
typedef struct rk_deadline rk_deadline_t;

/*
 * Starts the watchdog over nlists lists (one per daemon): a connection
 * waiting longer than timeout_ms for a request is shut down and counted
 * in *timed_out. NULL when out of memory or threads.
 */
rk_deadlines_t *rk_deadlines_start(unsigned nlists, int64_t timeout_ms,
                                   atomic_uint_fast64_t *timed_out);
/* Stops the watchdog and frees the lists; their connections must be closed. */
void rk_deadlines_stop(rk_deadlines_t *ds);

/* A new connection on list's daemon, waiting for its first request; NULL when out of memory. */
rk_deadline_t *rk_deadline_open(rk_deadlines_t *ds, unsigned list, int fd);
/* The connection closed (NULL: none was opened). */
void rk_deadline_close(rk_deadline_t *d);

/* The request is in: the clock stops until rk_deadline_restart. */
void rk_deadline_stop(rk_deadline_t *d);
/* The answer is out: the connection waits for its next request. */
void rk_deadline_restart(rk_deadline_t *d);

#endif
