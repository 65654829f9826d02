/*
 * stream.c — see stream.h.
 *
 * Locking: one mutex guards the ring and the clients. A reader callback
 * (an MHD thread) suspends its own connection under it when it has
 * nothing to send; a publisher marks such clients resumable under it and
 * calls MHD_resume_connection after unlocking. Only the publisher that
 * flipped `suspended` resumes a connection, so each suspend is matched by
 * exactly one resume, and a suspended connection is never freed (MHD does
 * not notice anything about it until it is resumed).
 *
 * Each client keeps the token it was opened with and resolves it again
 * from its reader, at most every RK_STREAM_RECHECK_MS: a token revoked or
 * expired since (here or on another instance sharing the tokens) ends the
 * stream. The stats event of every second resumes every client, so the
 * check runs about once a second without a timer of its own.
 */
#include "stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"

#define INTRO "retry: 2000\n: ratekit event stream\n\n"

typedef struct {
    uint64_t seq;
    int64_t id; /* 0: a heartbeat (no id line) */
    char *text;
    size_t len;
} event_t;

typedef struct client {
    struct client *prev, *next;
    struct MHD_Connection *conn;
    uint64_t next_seq; /* the event to send next */
    size_t offset;     /* bytes of it already sent */
    size_t intro_off;  /* bytes of INTRO already sent */
    bool suspended;
    /* Touched only by the client's reader (its connection's thread): no lock. */
    rk_role_t min_role; /* the route's; RK_ROLE_NONE: no token to check */
    int64_t checked_ms; /* rk_mono_ms() of the last resolve */
    size_t token_len;
    char token[]; /* the token the stream was opened with */
} client_t;

static struct {
    pthread_mutex_t lock;
    event_t ring[RK_STREAM_RING];
    uint64_t first_seq, next_seq; /* the ring holds [first_seq, next_seq) */
    int64_t last_id;
    client_t *clients;
    size_t nclients;
    bool stopping;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Marks every suspended client resumable; fills conns (lock held). Answers how many. */
static size_t take_suspended(struct MHD_Connection **conns) {
    size_t n = 0;
    for (client_t *c = S.clients; c; c = c->next) {
        if (c->suspended) {
            c->suspended = false;
            conns[n++] = c->conn;
        }
    }
    return n;
}

static void resume_all(struct MHD_Connection **conns, size_t n) {
    for (size_t i = 0; i < n; i++)
        MHD_resume_connection(conns[i]);
}

/* Appends one event to the ring (lock held), evicting the oldest when full. */
static void push_event(char *text, size_t len, int64_t id) {
    if (S.next_seq - S.first_seq == RK_STREAM_RING) {
        event_t *old = &S.ring[S.first_seq % RK_STREAM_RING];
        free(old->text);
        old->text = NULL;
        S.first_seq++;
    }
    event_t *e = &S.ring[S.next_seq % RK_STREAM_RING];
    e->seq = S.next_seq++;
    e->id = id;
    e->text = text;
    e->len = len;
}

/* Adds text to the ring and wakes every waiting client. Takes ownership of text. */
static void publish_text(char *text, size_t len, int64_t id) {
    static struct MHD_Connection *conns[RK_STREAM_MAX_CLIENTS];
    static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&conns_lock); /* conns is shared by publishers */
    pthread_mutex_lock(&S.lock);
    if (S.stopping) {
        pthread_mutex_unlock(&S.lock);
        pthread_mutex_unlock(&conns_lock);
        free(text);
        return;
    }
    push_event(text, len, id);
    size_t n = take_suspended(conns);
    pthread_mutex_unlock(&S.lock);
    resume_all(conns, n);
    pthread_mutex_unlock(&conns_lock);
}

void rk_stream_publish(const char *name, const char *json, size_t len) {
    size_t cap = len + strlen(name) + 64;
    char *text = malloc(cap);
    if (!text)
        return;
    pthread_mutex_lock(&S.lock);
    int64_t id = rk_now_ms();
    if (id <= S.last_id)
        id = S.last_id + 1;
    S.last_id = id;
    pthread_mutex_unlock(&S.lock);
    int n = snprintf(text, cap, "id: %lld\nevent: %s\ndata: ", (long long)id, name);
    memcpy(text + n, json, len);
    memcpy(text + n + len, "\n\n", 2);
    publish_text(text, (size_t)n + len + 2, id);
}

void rk_stream_heartbeat(void) {
    static const char beat[] = ": heartbeat\n\n";
    char *text = malloc(sizeof beat);
    if (!text)
        return;
    memcpy(text, beat, sizeof beat);
    publish_text(text, sizeof beat - 1, 0);
}

int64_t rk_stream_clients(void) {
    pthread_mutex_lock(&S.lock);
    int64_t n = (int64_t)S.nclients;
    pthread_mutex_unlock(&S.lock);
    return n;
}

void rk_stream_stop(void) {
    static struct MHD_Connection *conns[RK_STREAM_MAX_CLIENTS];
    pthread_mutex_lock(&S.lock);
    S.stopping = true;
    size_t n = take_suspended(conns);
    for (uint64_t s = S.first_seq; s < S.next_seq; s++) {
        free(S.ring[s % RK_STREAM_RING].text);
        S.ring[s % RK_STREAM_RING].text = NULL;
    }
    S.first_seq = S.next_seq;
    pthread_mutex_unlock(&S.lock);
    resume_all(conns, n);
}

/* ---- one client ----------------------------------------------------------------- */

/*
 * Whether c's token still allows the stream. Resolved again at most every
 * RK_STREAM_RECHECK_MS, from the tokens' in-memory snapshot (no SQLite),
 * which follows other instances' changes within RK_TOKENS_POLL_MS. The
 * bootstrap admin token always resolves.
 */
static bool token_still_allows(client_t *c) {
    if (c->min_role == RK_ROLE_NONE)
        return true;
    int64_t now = rk_mono_ms();
    if (now - c->checked_ms < RK_STREAM_RECHECK_MS)
        return true;
    c->checked_ms = now;
    return rk_token_role(c->token, c->token_len) >= c->min_role;
}

/*
 * libmicrohttpd asks for the next bytes of the body. Copies what is
 * pending; with nothing pending, suspends the connection and answers 0
 * (never 0 without suspending: that would spin).
 */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    client_t *c = cls;
    size_t copied = 0;
    /* Between events only, so that the client never sees half of one. */
    if (c->offset == 0 && !token_still_allows(c))
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&S.lock);
    if (S.stopping) {
        pthread_mutex_unlock(&S.lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (c->intro_off < sizeof INTRO - 1) {
        size_t n = sizeof INTRO - 1 - c->intro_off;
        n = n < max ? n : max;
        memcpy(buf, &INTRO[c->intro_off], n);
        c->intro_off += n;
        copied += n;
    }
    while (copied < max && c->next_seq < S.next_seq) {
        if (c->next_seq < S.first_seq) {
            /* a whole ring behind: end it; the client reconnects */
            pthread_mutex_unlock(&S.lock);
            return copied && c->offset == 0 ? (ssize_t)copied : MHD_CONTENT_READER_END_OF_STREAM;
        }
        const event_t *e = &S.ring[c->next_seq % RK_STREAM_RING];
        size_t n = e->len - c->offset;
        n = n < max - copied ? n : max - copied;
        memcpy(buf + copied, e->text + c->offset, n);
        copied += n;
        c->offset += n;
        if (c->offset == e->len) {
            c->offset = 0;
            c->next_seq++;
        }
    }
    if (copied == 0) {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&S.lock);
    return (ssize_t)copied;
}

/* The response is done with (client gone, stream ended, or daemon stopped). */
static void free_client(void *cls) {
    client_t *c = cls;
    pthread_mutex_lock(&S.lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        S.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    S.nclients--;
    pthread_mutex_unlock(&S.lock);
    explicit_bzero(c->token, c->token_len); /* a secret: not left in freed memory */
    free(c);
}

/* The first event to send a client that saw last_id: the oldest held after it. */
static uint64_t resume_point(const char *last_event_id) {
    if (!last_event_id || !*last_event_id)
        return S.next_seq;
    char *end;
    long long last = strtoll(last_event_id, &end, 10);
    if (*end || last <= 0)
        return S.next_seq;
    for (uint64_t s = S.first_seq; s < S.next_seq; s++) {
        const event_t *e = &S.ring[s % RK_STREAM_RING];
        if (e->id > last)
            return s;
    }
    return S.next_seq;
}

enum MHD_Result rk_stream_handle(rk_request_t *req) {
    size_t token_len = 0;
    const char *token = rk_request_token(req, &token_len);
    client_t *c = calloc(1, sizeof *c + token_len + 1);
    if (!c)
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    c->conn = req->conn;
    c->min_role = token ? req->min_role : RK_ROLE_NONE;
    c->checked_ms = rk_mono_ms(); /* resolved by the request just now */
    c->token_len = token_len;
    memcpy(c->token, token ? token : "", token_len);
    const char *last = rk_request_header(req, "Last-Event-ID");
    if (!last)
        last = rk_request_query(req, "last_event_id");
    pthread_mutex_lock(&S.lock);
    if (S.stopping || S.nclients >= RK_STREAM_MAX_CLIENTS) {
        bool stopping = S.stopping;
        pthread_mutex_unlock(&S.lock);
        explicit_bzero(c->token, c->token_len);
        free(c);
        if (stopping)
            return rk_reply_error(req, 503, "unavailable", "The server is stopping");
        return rk_reply_error(req, 503, "too_many_streams",
                              "Too many open event streams (at most %d)", RK_STREAM_MAX_CLIENTS);
    }
    c->next_seq = resume_point(last);
    c->next = S.clients;
    if (S.clients)
        S.clients->prev = c;
    S.clients = c;
    S.nclients++;
    pthread_mutex_unlock(&S.lock);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, read_events, c, free_client);
    if (!resp) {
        free_client(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return rk_reply_response(req, MHD_HTTP_OK, resp);
}
