/*
 * stream.h — GET /api/v1/stream, Server-Sent Events to the dashboard.
 *
 * Events go into one shared ring (RK_STREAM_RING of them, the replay
 * buffer of Last-Event-ID); each client reads the ring at its own pace.
 * A client with nothing to read is suspended (libmicrohttpd stops polling
 * it) and resumed by whoever publishes next; a heartbeat comment every
 * 15 s finds the clients that went away. A client that falls a whole ring
 * behind is ended (EventSource reconnects).
 */
#ifndef RK_STATS_STREAM_H
#define RK_STATS_STREAM_H

#include "../http/http.h"

#define RK_STREAM_MAX_CLIENTS 1000
#define RK_STREAM_RING 128

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
