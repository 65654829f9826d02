/*
 * stream.h — GET /api/v1/stream, Server-Sent Events to the dashboard.
 *
 * Events go into one shared ring (RK_STREAM_RING of them, the replay
 * buffer of Last-Event-ID); each client reads the ring at its own pace.
 * A client with nothing to read is suspended (libmicrohttpd stops polling
 * it) and resumed by whoever publishes next; a heartbeat comment every
 * 15 s finds the clients that went away. A client that falls a whole ring
 * behind is ended (EventSource reconnects), and so is a client whose token
 * no longer resolves to a role the route allows (revoked, expired): its
 * reconnection is then refused with 401.
 */
#ifndef RK_STATS_STREAM_H
#define RK_STATS_STREAM_H

#include "../http/http.h"

#define RK_STREAM_MAX_CLIENTS 1000
#define RK_STREAM_RING 128
/* Least time between two resolves of a stream's token; the stats event of
 * every second wakes each stream, so a revoked token's stream ends within
 * about two seconds. */
#define RK_STREAM_RECHECK_MS 500

/* The route's handler: 503 past RK_STREAM_MAX_CLIENTS or while stopping. */
enum MHD_Result rk_stream_handle(rk_request_t *req);

/* Sends `event: name` with data json (one line) and an id to every client. Any thread. */
void rk_stream_publish(const char *name, const char *json, size_t len);
/* Sends a ": heartbeat" comment to every client. */
void rk_stream_heartbeat(void);
/* Ends every stream (readers answer end-of-stream) and refuses new ones. */
void rk_stream_stop(void);
/* Open streams. */
int64_t rk_stream_clients(void);

#endif
