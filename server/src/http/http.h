/*
 * http.h — the request handed to every API handler, the route tables, and
 * the replies. One place answers errors, in the one shape of DESIGN.md §4.
 */
#ifndef RK_HTTP_H
#define RK_HTTP_H

#include <microhttpd.h>
#include <cjson/cJSON.h>

#include "../common.h"

#define RK_MAX_BODY (64 * 1024)
/* The admin plane's: an export of the largest ruleset must import again. */
#define RK_ADMIN_MAX_BODY (32 * 1024 * 1024)
#define RK_MAX_ROUTE_PARAMS 4

typedef enum { RK_ROLE_NONE = 0, RK_ROLE_VIEWER, RK_ROLE_EDITOR, RK_ROLE_ADMIN } rk_role_t;

typedef struct rk_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path; /* URL path, without the query string */
    const char *body; /* NUL-terminated copy of the body ("" when none); the request's
                       * own: a handler may decode in it in place (check_reader.c) */
    size_t body_len;
    const char *params[RK_MAX_ROUTE_PARAMS]; /* the {x} segments of the route, decoded */
    size_t nparams;
    rk_role_t role;     /* of the bearer token (admin plane) */
    rk_role_t min_role; /* the route's: the least role its token must keep */
    const char *actor;  /* who is asking, for the rule history ("admin", a token name) */
    bool admin_plane;   /* answered with the admin plane's security headers */
    bool responded;     /* a response has been queued */
    /* Set by a handler that suspended the connection: called, instead of the
     * route's handler, when the connection is resumed (server.c). */
    enum MHD_Result (*resume)(struct rk_request *req);
    void *resume_ctx; /* for resume, as its handler left it */
    void *state;      /* the request's state, owned by server.c */
} rk_request_t;

typedef enum MHD_Result (*rk_handler_t)(rk_request_t *req);

typedef struct {
    const char *method;  /* "GET", "POST", ...; "*" any method */
    const char *pattern; /* "/api/v1/rules/{id}": {x} matches one segment, a last "*" any rest */
    rk_handler_t handler;
    rk_role_t min_role;   /* RK_ROLE_NONE: no token needed */
    bool writes_database; /* refused while the database file is gone (rk_rules_db_moved) */
} rk_route_t;

/* A query-string argument, or NULL. */
const char *rk_request_query(const rk_request_t *req, const char *name);
/* Whether the query names the argument, with a value or without one ("?dry_run"). */
bool rk_request_query_given(const rk_request_t *req, const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *rk_request_header(const rk_request_t *req, const char *name);

/*
 * The bearer token the request carries ("Authorization: Bearer", or on the
 * event stream alone "?access_token="), its length in *len; NULL when none.
 */
const char *rk_request_token(const rk_request_t *req, size_t *len);

/*
 * The role token[0..len) resolves to now, as a request's token is resolved
 * (server.c's resolver): RK_ROLE_NONE when unknown, revoked or expired.
 * Reads the tokens' in-memory snapshot and never blocks: for an answer that
 * outlives its request (the event stream) and must notice a revocation.
 */
rk_role_t rk_token_role(const char *token, size_t len);

/*
 * A buffer (*cap bytes) that lives until the request completes, after its
 * response is sent: a body written there can be answered with
 * MHD_RESPMEM_PERSISTENT, without a copy (server.c).
 */
char *rk_request_answer_buf(rk_request_t *req, size_t *cap);

/*
 * Makes req wait for rk_request_resume() called on this thread (a store's
 * answer on an event loop, loop.h), before the work that resumes it starts.
 * On a loop the connection is not suspended: suspending and resuming cost
 * two epoll_ctl calls, as much as the rest of a check's system calls.
 * libmicrohttpd calls its handler again each round, which answers nothing
 * until woken. Off a loop, the connection is suspended.
 */
void rk_request_park(rk_request_t *req);

/*
 * Resumes the suspended connection of req, from any thread, and wakes the
 * event loop that serves it (loop.h) when that is another thread's; or
 * wakes req if parked (on its loop's thread only). The
 * last touch of req: the request may end as soon as it is resumed.
 */
void rk_request_resume(rk_request_t *req);

/* Bytes of rk_request_job_area(). */
#define RK_REQUEST_JOB_AREA 3072

/*
 * RK_REQUEST_JOB_AREA bytes (aligned for any type) that live until the
 * request completes: where a handler that suspends the connection keeps
 * the work it hands to another thread (server.c).
 */
void *rk_request_job_area(rk_request_t *req);

/* Most bytes of one rk_request_alloc(). */
#define RK_REQUEST_ALLOC_MAX (1024 * 1024)

/*
 * size bytes (zeroed, aligned for any type, at most RK_REQUEST_ALLOC_MAX)
 * that live until the request completes, for the work of a handler that
 * suspends the connection and does not fit the job area. NULL when out of
 * memory.
 */
void *rk_request_alloc(rk_request_t *req, size_t size);

/*
 * Parses the body as exactly one JSON value (no trailing bytes, no NUL
 * inside, raw or as \u0000 in a string); NULL when it is not. The caller
 * owns the result.
 */
cJSON *rk_request_json(const rk_request_t *req);

/* ---- replies (each queues the response and returns MHD's result) ---- */

/* Answers 400 invalid_json: the body must be expected ("one JSON object"),
 * or says which string holds a \u0000. */
enum MHD_Result rk_reply_bad_json(rk_request_t *req, const char *expected);
/* Answers body as JSON; takes ownership of body. */
enum MHD_Result rk_reply_json(rk_request_t *req, unsigned status, cJSON *body);
/* The same, with an ETag header (NULL: none). */
enum MHD_Result rk_reply_json_tagged(rk_request_t *req, unsigned status, cJSON *body,
                                     const char *etag);
/* Answers a copy of buf with the given content type. */
enum MHD_Result rk_reply_buf(rk_request_t *req, unsigned status, const char *content_type,
                             const char *buf, size_t len);
/* Answers with no body (204, ...). */
enum MHD_Result rk_reply_empty(rk_request_t *req, unsigned status);
/* {"error": {"code": code, "message": <printf>}} */
enum MHD_Result rk_reply_error(rk_request_t *req, unsigned status, const char *code,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 400 invalid_rule with "errors": [{field, message}...]; takes ownership of errors. */
enum MHD_Result rk_reply_invalid(rk_request_t *req, const char *code, const char *message,
                                 cJSON *errors);

/*
 * Answers a response built by the caller, adding the headers every answer
 * carries (request id, and the admin plane's security headers).
 * Takes ownership of resp.
 */
enum MHD_Result rk_reply_response(rk_request_t *req, unsigned status, struct MHD_Response *resp);

#endif
