/*
 * server.h — an HTTP listener on libmicrohttpd: one daemon per thread over
 * epoll, each with its own listening socket on the address (listen.h),
 * suspend/resume allowed, its routes and, on the admin plane, bearer-token
 * authentication and the dashboard's files.
 */
#ifndef RK_HTTP_SERVER_H
#define RK_HTTP_SERVER_H

#include "http.h"

typedef enum { RK_PLANE_DATA = 0, RK_PLANE_ADMIN } rk_plane_t;

#define RK_MAX_CONNECTIONS_DEFAULT 10000u /* RATEKIT_MAX_CONNECTIONS's default */

typedef struct {
    const rk_route_t *routes;
    size_t len;
} rk_route_table_t;

typedef struct {
    rk_plane_t plane;
    const char *address; /* "host:port" */
    const rk_route_table_t *tables;
    size_t ntables;
    unsigned threads;
    unsigned max_connections; /* on all its threads together; 0: RK_MAX_CONNECTIONS_DEFAULT */
    unsigned idle_timeout_s;  /* each request must be whole within it (deadline.h); 0: 30 */
    const char *static_dir;   /* admin plane: the dashboard's files, or NULL */
    size_t max_body;          /* bytes of a request body; 0: RK_MAX_BODY */
    /* When set, every /v1/ route requires it as "Authorization: Bearer" or
     * "X-Ratekit-Token" (the data plane's RATEKIT_CHECK_TOKEN). */
    const char *required_token;
    /* Serve with one event loop per thread (loop.h) rather than libmicrohttpd's
     * pool: for a store that answers asynchronously. */
    bool event_loops;
    /* When set and true, a route that writes the database (writes_database)
     * answers 503: its change would be lost (rk_rules_db_moved). */
    bool (*database_moved)(void);
} rk_listener_config_t;

typedef struct rk_listener rk_listener_t;

/*
 * Resolves a bearer token to a role, writing who it is into actor
 * (e.g. "admin" or a token's name). RK_ROLE_NONE when unknown.
 */
typedef rk_role_t (*rk_token_resolver_t)(const char *token, size_t len, char *actor,
                                         size_t actorlen);
void rk_http_set_token_resolver(rk_token_resolver_t fn);

rk_listener_t *rk_listener_start(const rk_listener_config_t *cfg, char *err, size_t errlen);
/* Stops accepting, waits (at most grace_ms) for open requests, and frees. */
void rk_listener_stop(rk_listener_t *l, int64_t grace_ms);
/* The port actually bound (useful with port 0). */
unsigned rk_listener_port(const rk_listener_t *l);

/* The connections open on a plane's listener; those it closed at once since
 * ratekitd started because it held RATEKIT_MAX_CONNECTIONS; and those it
 * closed because a request was not whole within the idle timeout. */
void rk_listener_connections(rk_plane_t plane, unsigned *open, uint64_t *refused,
                             uint64_t *timed_out);

/* Serves the dashboard's files (static.c). */
enum MHD_Result rk_serve_static(rk_request_t *req, const char *dir);

#endif
