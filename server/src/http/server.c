/*
 * server.c — HTTP listeners: request lifecycle, body buffering, routing,
 * authentication, graceful stop.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * when the headers are parsed, once per chunk of body, and once more when
 * the body is complete. We answer only on that last call, never on the
 * first (0.9.75 drops keep-alive when a response is queued on the first
 * call), except to refuse an announced body that is too large, or an admin
 * request with a body that lacks the token its route needs (refused before
 * any of the body is read or held).
 */
#include "server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../config.h"
#include "../log.h"
#include "deadline.h"
#include "listen.h"
#include "loop.h"

#define INLINE_BODY 2048
#define PARAMS_BUF 512
#define ANSWER_BUF 4096
/* Request states a pool thread keeps for reuse (no malloc per request). */
#define SPARE_STATES 64
/* Counters of requests in flight, one cache line each, spread over threads. */
#define INFLIGHT_SLOTS 16

typedef struct {
    _Alignas(64) _Atomic long n;
} inflight_slot_t;

/* What libmicrohttpd hands back about a connection: its listener and daemon. */
typedef struct {
    struct rk_listener *listener;
    unsigned index; /* of its daemon, and of its list of deadlines */
} daemon_ctx_t;

struct rk_listener {
    /* One daemon per thread, each on its own socket of the address (listen.h). */
    struct MHD_Daemon **daemons;
    daemon_ctx_t *daemon_ctx;
    unsigned ndaemons;
    rk_deadlines_t *deadlines; /* each request's, against slow clients (deadline.h) */
    rk_loops_t *loops;
    rk_listener_config_t cfg;
    char address[128];
    /* Each thread counts in its own slot: one counter that every request of
     * every thread wrote made the cores pass its line to and fro. */
    inflight_slot_t inflight[INFLIGHT_SLOTS];
};

/*
 * The connections of each plane's listener (ratekitd runs one per plane),
 * written when a connection opens or closes, never per request. Kept out of
 * the listener so that /metrics may read them while a listener stops.
 */
static struct {
    atomic_uint open;               /* on all the listener's daemons */
    atomic_uint_fast64_t refused;   /* closed at once: the listener was at its bound */
    atomic_uint_fast64_t timed_out; /* closed: a request not whole within the idle timeout */
    _Atomic int64_t warned_ms;      /* when the bound was last logged */
} plane_connections[RK_PLANE_ADMIN + 1];

/* Everything one request needs, allocated on its first handler call. */
typedef struct {
    rk_request_t req;
    rk_listener_t *listener;
    rk_loop_t *loop;         /* the event loop serving the connection; NULL in the pool */
    rk_deadline_t *deadline; /* its connection's; NULL when unwatched */
    char *body;              /* inline_body, or heap when larger */
    size_t body_len, body_cap;
    bool too_large;
    bool discard_body; /* nothing will read the body: its chunks are dropped, not kept */
    /* Waiting on its loop without being suspended (rk_request_park): while
     * PARKED, its handler answers nothing each time libmicrohttpd calls it;
     * ORPHANED: its connection closed meanwhile, so it is freed when woken. */
    enum { NOT_PARKED, PARKED, WOKEN, ORPHANED } parking;
    unsigned inflight_slot;       /* the listener's counter this request is counted in */
    struct request_block *blocks; /* rk_request_alloc()'s, freed at completion */
    char actor[64];
    char params_buf[PARAMS_BUF];
    char inline_body[INLINE_BODY];
    /* The answer's body, sent from here without a copy (MHD_RESPMEM_PERSISTENT):
     * the state outlives the response, being freed at request completion. */
    char answer[ANSWER_BUF];
    /* What a handler that suspends the connection hands to another thread. */
    _Alignas(max_align_t) unsigned char job_area[RK_REQUEST_JOB_AREA];
} request_state_t;

/*
 * Spare request states, per thread. A connection is served by one pool
 * thread from its first byte to its completion, so a state is taken and
 * given back on the same thread: no lock. The list is freed when the
 * thread exits (its pthread key's destructor).
 */
typedef struct spare_state {
    struct spare_state *next;
} spare_state_t;

typedef struct {
    spare_state_t *head;
    size_t count;
} spare_list_t;

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
/* This thread's list, read without a call; the key is there to free it. */
static _Thread_local spare_list_t *this_thread_spares;

/* The key's destructor: runs on the exiting thread, which may still free a state after. */
static void spare_list_free(void *p) {
    spare_list_t *list = p;
    this_thread_spares = NULL;
    while (list->head) {
        spare_state_t *next = list->head->next;
        free(list->head);
        list->head = next;
    }
    free(list);
}

/* This thread's slot among a listener's in-flight counters. */
static unsigned this_thread_inflight_slot(void) {
    static atomic_uint next_slot;
    static _Thread_local unsigned slot_plus_one;
    if (RK_UNLIKELY(slot_plus_one == 0))
        slot_plus_one = atomic_fetch_add(&next_slot, 1) % INFLIGHT_SLOTS + 1;
    return slot_plus_one - 1;
}

/* Requests of l in flight, summed over its threads' counters. */
static long inflight_total(rk_listener_t *l) {
    long n = 0;
    for (unsigned i = 0; i < INFLIGHT_SLOTS; i++)
        n += atomic_load(&l->inflight[i].n);
    return n;
}

static void spare_key_create(void) {
    pthread_key_create(&spare_key, spare_list_free);
}

/* This thread's spare list, created on first use; NULL when out of memory. */
static spare_list_t *spare_list(void) {
    if (RK_LIKELY(this_thread_spares != NULL))
        return this_thread_spares;
    pthread_once(&spare_once, spare_key_create);
    spare_list_t *list = calloc(1, sizeof *list);
    if (list && pthread_setspecific(spare_key, list) != 0) {
        free(list);
        list = NULL;
    }
    this_thread_spares = list;
    return list;
}

/* A request state (uninitialised), from this thread's spares when it has one. */
static request_state_t *state_alloc(void) {
    spare_list_t *list = spare_list();
    if (list && list->head) {
        spare_state_t *sp = list->head;
        list->head = sp->next;
        list->count--;
        return (request_state_t *)(void *)sp;
    }
    return malloc(sizeof(request_state_t));
}

/* Gives a state back to this thread's spares, or frees it when they are full. */
static void state_free(request_state_t *st) {
    spare_list_t *list = spare_list();
    if (list && list->count < SPARE_STATES) {
        spare_state_t *sp = (spare_state_t *)(void *)st;
        sp->next = list->head;
        list->head = sp;
        list->count++;
        return;
    }
    free(st);
}

/* A block of rk_request_alloc(), on the request's list. */
typedef struct request_block {
    struct request_block *next;
    _Alignas(max_align_t) unsigned char bytes[];
} request_block_t;

void *rk_request_alloc(rk_request_t *req, size_t size) {
    request_state_t *st = req->state;
    if (size > RK_REQUEST_ALLOC_MAX)
        return NULL;
    request_block_t *b = calloc(1, sizeof *b + size);
    if (!b)
        return NULL;
    b->next = st->blocks;
    st->blocks = b;
    return b->bytes;
}

static void free_blocks(request_state_t *st) {
    while (st->blocks) {
        request_block_t *next = st->blocks->next;
        free(st->blocks);
        st->blocks = next;
    }
}

void *rk_request_job_area(rk_request_t *req) {
    request_state_t *st = req->state;
    return st->job_area;
}

char *rk_request_answer_buf(rk_request_t *req, size_t *cap) {
    request_state_t *st = req->state;
    *cap = sizeof st->answer;
    return st->answer;
}

/* Everything a request holds, given back at its completion. */
static void request_free(request_state_t *st) {
    if (st->body != st->inline_body)
        free(st->body);
    free_blocks(st);
    state_free(st);
}

void rk_request_park(rk_request_t *req) {
    request_state_t *st = req->state;
    if (!st->loop) {
        MHD_suspend_connection(req->conn);
        return;
    }
    st->parking = PARKED;
    rk_loop_parked(st->loop, 1);
}

void rk_request_resume(rk_request_t *req) {
    request_state_t *st = req->state;
    rk_loop_t *loop = st->loop; /* read first: req may end */
    if (st->parking != NOT_PARKED) {
        rk_loop_parked(loop, -1);
        if (st->parking == ORPHANED) {
            request_free(st);
            return;
        }
        st->parking = WOKEN; /* answered the next time the daemon calls its handler */
        rk_loop_resumed(loop);
        return;
    }
    MHD_resume_connection(req->conn);
    if (loop)
        rk_loop_resumed(loop);
}

static rk_token_resolver_t token_resolver;

void rk_http_set_token_resolver(rk_token_resolver_t fn) {
    token_resolver = fn;
}

/* ---- routing -------------------------------------------------------------- */

/*
 * Matches path against a pattern such as "/api/v1/rules/{id}/history".
 * On a match, copies the {x} segments into buf and points params at them.
 * A last "{x*}" takes the rest of the path, slashes included (a client key
 * such as "route:GET /api/x", sent URL-encoded). A last bare "*" matches any
 * rest, empty included, without copying it: the handler reads req->path.
 */
static bool route_matches(const char *pattern, const char *path, rk_request_t *req, char *buf,
                          size_t buflen) {
    size_t used = 0, nparams = 0;
    const char *p = pattern, *u = path;
    while (*p) {
        if (*p == '*' && !p[1]) {
            req->nparams = nparams;
            return true;
        }
        if (!*u)
            break;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = close && close[-1] == '*' && !close[1] ? NULL : strchr(u, '/');
            size_t seg_len = seg_end ? (size_t)(seg_end - u) : strlen(u);
            if (!close || seg_len == 0 || nparams == RK_MAX_ROUTE_PARAMS ||
                used + seg_len + 1 > buflen)
                return false;
            memcpy(buf + used, u, seg_len);
            buf[used + seg_len] = '\0';
            req->params[nparams++] = buf + used;
            used += seg_len + 1;
            p = close + 1;
            u += seg_len;
            continue;
        }
        if (*p != *u)
            return false;
        p++;
        u++;
    }
    if (*p || *u)
        return false;
    req->nparams = nparams;
    return true;
}

/*
 * Finds the route for the request. *path_known tells, when none matches the
 * method, whether another method would have matched (405 rather than 404).
 */
static const rk_route_t *find_route(request_state_t *st, bool *path_known) {
    const rk_listener_config_t *cfg = &st->listener->cfg;
    *path_known = false;
    for (size_t t = 0; t < cfg->ntables; t++) {
        for (size_t i = 0; i < cfg->tables[t].len; i++) {
            const rk_route_t *r = &cfg->tables[t].routes[i];
            if (!route_matches(r->pattern, st->req.path, &st->req, st->params_buf,
                               sizeof st->params_buf))
                continue;
            if (!strcmp(r->method, "*") || !strcmp(r->method, st->req.method) ||
                (!strcmp(st->req.method, "HEAD") && !strcmp(r->method, "GET")))
                return r;
            *path_known = true;
        }
    }
    return NULL;
}

static enum MHD_Result method_not_allowed(request_state_t *st) {
    char allow[128] = "";
    size_t used = 0;
    const rk_listener_config_t *cfg = &st->listener->cfg;
    for (size_t t = 0; t < cfg->ntables; t++) {
        for (size_t i = 0; i < cfg->tables[t].len; i++) {
            const rk_route_t *r = &cfg->tables[t].routes[i];
            rk_request_t probe = {0};
            char buf[PARAMS_BUF];
            if (route_matches(r->pattern, st->req.path, &probe, buf, sizeof buf) &&
                used + strlen(r->method) + 3 < sizeof allow)
                used += (size_t)snprintf(allow + used, sizeof allow - used, "%s%s",
                                         used ? ", " : "", r->method);
        }
    }
    static const char body[] =
        "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Method not "
        "allowed for this path\"}}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return rk_reply_response(&st->req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

/* ---- authentication ------------------------------------------------------- */

const char *rk_request_token(const rk_request_t *req, size_t *len) {
    const char *auth = rk_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = NULL;
    if (auth && !strncasecmp(auth, "Bearer ", 7))
        token = auth + 7;
    /* EventSource cannot send headers: the stream alone takes ?access_token=. */
    if (!token && !strcmp(req->path, "/api/v1/stream"))
        token = rk_request_query(req, "access_token");
    if (!token)
        return NULL;
    while (*token == ' ')
        token++;
    *len = strnlen(token, 1024);
    return token;
}

rk_role_t rk_token_role(const char *token, size_t len) {
    char actor[64];
    return token && token_resolver ? token_resolver(token, len, actor, sizeof actor) : RK_ROLE_NONE;
}

/* Resolves the bearer token of the request; RK_ROLE_NONE when absent or unknown. */
static rk_role_t authenticate(request_state_t *st) {
    size_t len = 0;
    const char *token = rk_request_token(&st->req, &len);
    if (!token || !token_resolver)
        return RK_ROLE_NONE;
    return token_resolver(token, len, st->actor, sizeof st->actor);
}

/* Refuses a request whose token's role (RK_ROLE_NONE: no valid token) is short of its route's. */
static enum MHD_Result refuse_role(request_state_t *st, rk_role_t role) {
    if (role == RK_ROLE_NONE)
        return rk_reply_error(&st->req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                              "A valid bearer token is required");
    return rk_reply_error(&st->req, MHD_HTTP_FORBIDDEN, "forbidden",
                          "This token's role may not do this");
}

/*
 * Whether the request carries the listener's required token, as
 * "X-Ratekit-Token" (forward-auth proxies pass the client's own
 * Authorization on) or "Authorization: Bearer". Compared in constant time.
 */
static bool has_required_token(request_state_t *st) {
    const char *want = st->listener->cfg.required_token;
    size_t want_len = strlen(want);
    const char *t = rk_request_header(&st->req, "X-Ratekit-Token");
    if (t && rk_const_time_eq(t, strnlen(t, 1024), want, want_len))
        return true;
    const char *auth = rk_request_header(&st->req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        for (auth += 7; *auth == ' '; auth++)
            ;
        return rk_const_time_eq(auth, strnlen(auth, 1024), want, want_len);
    }
    return false;
}

/* ---- the access handler --------------------------------------------------- */

/* Appends a chunk of body; past the listener's max_body, remembers and discards. */
static void append_body(request_state_t *st, const char *data, size_t len) {
    if (st->too_large)
        return;
    if (st->body_len + len > st->listener->cfg.max_body) {
        st->too_large = true;
        return;
    }
    if (st->body_len + len + 1 > st->body_cap) {
        size_t cap = st->body_cap * 2;
        while (cap < st->body_len + len + 1)
            cap *= 2;
        char *heap = st->body == st->inline_body ? malloc(cap) : realloc(st->body, cap);
        if (!heap) {
            st->too_large = true;
            return;
        }
        if (st->body == st->inline_body)
            memcpy(heap, st->inline_body, st->body_len);
        st->body = heap;
        st->body_cap = cap;
    }
    memcpy(st->body + st->body_len, data, len);
    st->body_len += len;
    st->body[st->body_len] = '\0';
}

static enum MHD_Result body_too_large(request_state_t *st) {
    return rk_reply_error(&st->req, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                          "Request body exceeds %zu bytes", st->listener->cfg.max_body);
}

static enum MHD_Result dispatch(request_state_t *st) {
    rk_listener_t *l = st->listener;
    if (st->too_large)
        return body_too_large(st);
    bool path_known;
    const rk_route_t *route = find_route(st, &path_known);
    if (!route) {
        if (path_known)
            return method_not_allowed(st);
        if (l->cfg.plane == RK_PLANE_ADMIN && strncmp(st->req.path, "/api/", 5) != 0 &&
            (!strcmp(st->req.method, "GET") || !strcmp(st->req.method, "HEAD")))
            return rk_serve_static(&st->req, l->cfg.static_dir);
        return rk_reply_error(&st->req, MHD_HTTP_NOT_FOUND, "not_found", "No such endpoint: %s %s",
                              st->req.method, st->req.path);
    }
    if (l->cfg.required_token && !strncmp(st->req.path, "/v1/", 4) && !has_required_token(st))
        return rk_reply_error(&st->req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                              "This endpoint requires the check token");
    if (route->min_role != RK_ROLE_NONE) {
        rk_role_t role = authenticate(st);
        if (role < route->min_role)
            return refuse_role(st, role);
        st->req.role = role;
        st->req.min_role = route->min_role;
        st->req.actor = st->actor;
    }
    if (route->writes_database && l->cfg.database_moved && l->cfg.database_moved())
        return rk_reply_error(&st->req, MHD_HTTP_SERVICE_UNAVAILABLE, "database_moved",
                              "The database file was deleted or replaced while ratekit ran: this "
                              "change would be lost at restart. Put the file back, or restart "
                              "ratekit");
    return route->handler(&st->req);
}

/* The deadline on_connection gave conn; NULL when it is not watched. */
static rk_deadline_t *connection_deadline(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* Whether the request's headers announce a body (a length above 0, or chunks). */
static bool body_announced(struct MHD_Connection *conn) {
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl && strtoull(cl, NULL, 10) > 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * The first call of an admin request that announces a body: an anonymous
 * client must not make us hold up to max_body bytes. A route that needs a
 * token the request lacks is refused at once (401 or 403, as dispatch would
 * answer). libmicrohttpd 0.9.75 then reads no more of the body and closes
 * the connection after the answer: a client that reads while it sends (or
 * waits for 100 Continue) gets it; one that writes a large body whole before
 * reading may see the connection reset instead, as with the 413 above. A
 * request that no route takes (404, 405, a static file) is answered at the
 * end as ever, its body dropped unread. Answers MHD_YES to read the body.
 */
static enum MHD_Result refuse_before_body(request_state_t *st) {
    bool path_known;
    const rk_route_t *route = find_route(st, &path_known);
    if (!route) {
        st->discard_body = true;
        return MHD_YES;
    }
    if (route->min_role == RK_ROLE_NONE)
        return MHD_YES;
    rk_role_t role = authenticate(st);
    if (role >= route->min_role)
        return MHD_YES;      /* dispatch resolves it again: it may be revoked meanwhile */
    st->discard_body = true; /* should libmicrohttpd hand us the body all the same */
    return refuse_role(st, role);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)version;
    rk_listener_t *l = cls;
    request_state_t *st = *req_cls;
    if (!st) {
        st = state_alloc();
        if (!st)
            return MHD_NO;
        memset(st, 0, offsetof(request_state_t, params_buf));
        st->listener = l;
        st->loop = rk_loop_current();
        st->body = st->inline_body;
        st->body_cap = INLINE_BODY;
        st->inline_body[0] = '\0';
        st->req.conn = conn;
        st->req.method = method;
        st->req.path = url;
        st->req.body = st->inline_body;
        st->req.admin_plane = l->cfg.plane == RK_PLANE_ADMIN;
        st->req.actor = "anonymous";
        st->req.state = st;
        st->deadline = connection_deadline(conn);
        *req_cls = st;
        st->inflight_slot = this_thread_inflight_slot();
        atomic_fetch_add_explicit(&l->inflight[st->inflight_slot].n, 1, memory_order_relaxed);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > l->cfg.max_body) {
            st->too_large = true;
            return body_too_large(st); /* closes the connection: the body is not read */
        }
        if (l->cfg.plane == RK_PLANE_ADMIN) {
            rk_deadline_stop(st->deadline); /* its headers are in: an upload may be slow */
            if (body_announced(conn))
                return refuse_before_body(st);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!st->discard_body)
            append_body(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->req.responded)
        return MHD_YES;
    if (st->req.resume) { /* resumed: the handler that suspended it answers */
        if (st->parking == PARKED)
            return MHD_YES; /* still waiting: libmicrohttpd calls again next round */
        st->parking = NOT_PARKED;
        rk_handler_t resume = st->req.resume;
        st->req.resume = NULL;
        return resume(&st->req);
    }
    rk_deadline_stop(st->deadline); /* the request is whole */
    st->req.body = st->body;
    st->req.body_len = st->body_len;
    return dispatch(st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    rk_listener_t *l = cls;
    request_state_t *st = *req_cls;
    if (!st)
        return;
    *req_cls = NULL;
    rk_deadline_restart(st->deadline); /* for the connection's next request */
    atomic_fetch_sub_explicit(&l->inflight[st->inflight_slot].n, 1, memory_order_relaxed);
    if (st->parking == PARKED)
        st->parking = ORPHANED; /* the store still writes in it: freed when it answers */
    else
        request_free(st);
}

/*
 * The accept policy: a connection is let in while the listener holds fewer
 * than RATEKIT_MAX_CONNECTIONS, whichever daemon accepts it. Each daemon's
 * own limit is the whole bound: a share of it per daemon would leave a
 * connection waiting in a full daemon's backlog while the others have room,
 * the kernel spreading connections over the sockets unevenly (listen.h).
 * Over the bound, libmicrohttpd closes the new connection at once. Daemons
 * accepting at the same instant may each let one more in, and a connection
 * counts until its daemon has seen it close.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addr;
    (void)addrlen;
    const rk_listener_t *l = cls;
    rk_plane_t plane = l->cfg.plane;
    unsigned open = atomic_load_explicit(&plane_connections[plane].open, memory_order_relaxed);
    if (RK_LIKELY(open < l->cfg.max_connections))
        return MHD_YES;
    atomic_fetch_add_explicit(&plane_connections[plane].refused, 1, memory_order_relaxed);
    /* Logged once a minute at most: a flood must not flood the log too. */
    int64_t now = rk_mono_ms(), last = atomic_load(&plane_connections[plane].warned_ms);
    if ((last == 0 || now - last >= 60000) &&
        atomic_compare_exchange_strong(&plane_connections[plane].warned_ms, &last, now))
        rk_warn("%s: %u connections open, the bound (RATEKIT_MAX_CONNECTIONS): new connections "
                "are closed at once until some close (said once a minute at most)",
                l->address, open);
    return MHD_NO;
}

/* Counts a connection and watches its deadline, from its opening to its closing
 * (which libmicrohttpd notifies before it closes the descriptor). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
    const daemon_ctx_t *dc = cls;
    const rk_listener_t *l = dc->listener;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add_explicit(&plane_connections[l->cfg.plane].open, 1, memory_order_relaxed);
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = fd ? rk_deadline_open(l->deadlines, dc->index, fd->connect_fd) : NULL;
    } else {
        atomic_fetch_sub_explicit(&plane_connections[l->cfg.plane].open, 1, memory_order_relaxed);
        rk_deadline_close(*socket_ctx);
        *socket_ctx = NULL;
    }
}

void rk_listener_connections(rk_plane_t plane, unsigned *open, uint64_t *refused,
                             uint64_t *timed_out) {
    *open = atomic_load(&plane_connections[plane].open);
    *refused = atomic_load(&plane_connections[plane].refused);
    *timed_out = atomic_load(&plane_connections[plane].timed_out);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    rk_debug("http: %s", msg);
}

/* ---- start and stop ------------------------------------------------------- */

/*
 * Each connection's memory in libmicrohttpd. A request's headers and its
 * answer's are built in it, so it bounds the headers a request may carry:
 * with 32 KiB, one line of about 30 KB, or 14 KB in all when lines average
 * 50 bytes or more (each costs about 66 bytes besides), room for a gateway's
 * forwarded cookie jar. libmicrohttpd 0.9.75 zeroes all of it after
 * each request: 16 KiB answered checks about 5% faster, but left 7.8 KB for
 * headers, so 32 KiB stays.
 */
#define CONNECTION_MEMORY ((size_t)32 * 1024)

static unsigned thread_count(const rk_listener_config_t *cfg) {
    if (cfg->threads)
        return cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/*
 * One daemon per thread, each on its own listening socket (listen.h): with
 * event loops (loop.h) the daemons run without an internal thread and each
 * loop runs one; otherwise each daemon runs its own internal thread. addr's
 * port 0 becomes the port the first daemon was given.
 */
static rk_status_t start_daemons(rk_listener_t *l, unsigned flags, struct sockaddr *addr,
                                 size_t addrlen, unsigned n) {
    if (rk_address_in_use(addr, addrlen))
        return RK_ERR;
    l->daemons = calloc(n, sizeof *l->daemons);
    l->daemon_ctx = calloc(n, sizeof *l->daemon_ctx);
    unsigned timeout_s = l->cfg.idle_timeout_s ? l->cfg.idle_timeout_s : 30u;
    if (!l->daemons || !l->daemon_ctx ||
        !(l->deadlines = rk_deadlines_start(n, (int64_t)timeout_s * 1000,
                                            &plane_connections[l->cfg.plane].timed_out)))
        return RK_ERR;
    flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (!l->cfg.event_loops)
        flags |= MHD_USE_INTERNAL_POLLING_THREAD;
    for (unsigned i = 0; i < n; i++) {
        l->daemon_ctx[i] = (daemon_ctx_t){.listener = l, .index = i};
        l->daemons[i] = MHD_start_daemon(
            flags, 0, on_accept, l, on_request, l, MHD_OPTION_SOCK_ADDR, addr,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_CONNECTION_LIMIT,
            l->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, &l->daemon_ctx[i], MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, MHD_OPTION_END);
        if (!l->daemons[i])
            return RK_ERR;
        l->ndaemons++;
        const union MHD_DaemonInfo *info =
            i == 0 ? MHD_get_daemon_info(l->daemons[0], MHD_DAEMON_INFO_BIND_PORT) : NULL;
        if (info)
            rk_address_set_port(addr, info->port);
    }
    if (l->cfg.event_loops && !(l->loops = rk_loops_start(l->daemons, n)))
        return RK_ERR;
    return RK_OK;
}

/* Stops the daemons (which closes their connections), then their deadlines' watchdog. */
static void stop_daemons(rk_listener_t *l) {
    for (unsigned i = 0; i < l->ndaemons; i++)
        MHD_stop_daemon(l->daemons[i]);
    rk_deadlines_stop(l->deadlines);
    free(l->daemons);
    free(l->daemon_ctx);
}

rk_listener_t *rk_listener_start(const rk_listener_config_t *cfg, char *err, size_t errlen) {
    struct sockaddr_storage addr;
    size_t addrlen;
    if (rk_parse_listen_addr(cfg->address, &addr, &addrlen) != RK_OK) {
        snprintf(err, errlen, "cannot parse address %s", cfg->address);
        return NULL;
    }
    size_t size = (sizeof(rk_listener_t) + 63) / 64 * 64; /* its counters are aligned */
    rk_listener_t *l = aligned_alloc(64, size);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(l, 0, size);
    l->cfg = *cfg;
    if (!l->cfg.max_body)
        l->cfg.max_body = RK_MAX_BODY;
    if (!l->cfg.max_connections)
        l->cfg.max_connections = RK_MAX_CONNECTIONS_DEFAULT;
    if (l->cfg.required_token && !*l->cfg.required_token)
        l->cfg.required_token = NULL;
    snprintf(l->address, sizeof l->address, "%s", cfg->address);
    l->cfg.address = l->address;
    unsigned flags = addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0;
    unsigned threads = thread_count(cfg);
    if (start_daemons(l, flags, (struct sockaddr *)&addr, addrlen, threads) != RK_OK) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
                 cfg->address);
        rk_loops_stop(l->loops);
        stop_daemons(l);
        free(l);
        return NULL;
    }
    return l;
}

unsigned rk_listener_port(const rk_listener_t *l) {
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(l->daemons[0], MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void rk_listener_stop(rk_listener_t *l, int64_t grace_ms) {
    if (!l)
        return;
    if (l->loops) {
        rk_loops_quiesce(l->loops);
    } else {
        for (unsigned i = 0; i < l->ndaemons; i++) {
            MHD_socket fd = MHD_quiesce_daemon(l->daemons[i]);
            if (fd != MHD_INVALID_SOCKET)
                close(fd);
        }
    }
    int64_t deadline = rk_mono_ms() + grace_ms;
    while (inflight_total(l) > 0 && rk_mono_ms() < deadline)
        usleep(5000);
    rk_loops_stop(l->loops); /* the loops answer what their store still holds */
    stop_daemons(l);
    free(l);
}

/* ---- request accessors ---------------------------------------------------- */

const char *rk_request_query(const rk_request_t *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool rk_request_query_given(const rk_request_t *req, const char *name) {
    const char *value = NULL;
    size_t len = 0;
    return MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                         &value, &len) == MHD_YES;
}

const char *rk_request_header(const rk_request_t *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
