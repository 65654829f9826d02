/*
 * reply_arena.c — see reply_arena.h.
 *
 * Every object the arena's functions make is a reply_node_t, in the arena or
 * on the heap, so rk_reply_free() can tell where each part lives. A reply's
 * top object is the arena's first node: making it starts the arena afresh,
 * freeing it gives the arena back. The children of a heap top stay on the
 * heap, so that the arena is never started afresh under a reply still held.
 *
 * An arena starts with room for a check's reply and grows, when a reply did
 * not fit, before the next one (never under a reply: its parts would move),
 * to what that reply needed, up to room for a whole batch of the Redis
 * store's loop (512 replies of a check); what does not fit even then is
 * built on the heap.
 */
#include "reply_arena.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Room at first: a check's reply (an array of six) and a short error. */
enum { ARENA_NODES = 8, ARENA_BYTES = 256 };
/* Room at most: a batch of 512 checks' replies, each an array of six. */
enum { ARENA_NODES_MAX = 4096, ARENA_BYTES_MAX = 32768 };

typedef struct rk_reply_arena rk_reply_arena_t;

typedef struct {
    redisReply reply;        /* first: a node is handed out as its reply */
    rk_reply_arena_t *arena; /* the arena it lives in; NULL on the heap */
} reply_node_t;

struct rk_reply_arena {
    reply_node_t *nodes;
    size_t nodes_used, nodes_cap;
    unsigned char *bytes; /* malloc'd: aligned for any part */
    size_t bytes_used, bytes_cap;
    size_t nodes_short, bytes_short; /* what the reply held needed beyond the room */
    bool held;                       /* nodes[0] is a reply's top, not freed yet */
    bool orphaned;                   /* the reader is gone: the arena goes with its reply */
};

static void arena_free(rk_reply_arena_t *a) {
    if (a) {
        free(a->nodes);
        free(a->bytes);
        free(a);
    }
}

/* The smallest power of two of at least n, from `from` on, at most max. */
static size_t room_for(size_t from, size_t n, size_t max) {
    while (from < n && from < max)
        from *= 2;
    return from < max ? from : max;
}

/* Grows the arena to what the last reply needed (no reply holds it); kept as it is when out of
 * memory. */
static void arena_grow(rk_reply_arena_t *a) {
    size_t nodes = room_for(a->nodes_cap, a->nodes_used + a->nodes_short, ARENA_NODES_MAX);
    size_t bytes = room_for(a->bytes_cap, a->bytes_used + a->bytes_short, ARENA_BYTES_MAX);
    a->nodes_short = a->bytes_short = 0;
    if (nodes > a->nodes_cap) {
        reply_node_t *grown = realloc(a->nodes, nodes * sizeof *grown);
        if (grown) {
            a->nodes = grown;
            a->nodes_cap = nodes;
        }
    }
    if (bytes > a->bytes_cap) {
        unsigned char *grown = realloc(a->bytes, bytes);
        if (grown) {
            a->bytes = grown;
            a->bytes_cap = bytes;
        }
    }
}

/* The arena a new object goes to, NULL for the heap. */
static rk_reply_arena_t *arena_for(const redisReadTask *task) {
    rk_reply_arena_t *a = task->privdata;
    if (!a)
        return NULL;
    if (!task->parent) { /* a new top: the arena, unless a reply still holds it */
        if (a->held)
            return NULL;
        if (a->nodes_short || a->bytes_short)
            arena_grow(a);
        a->held = true;
        a->nodes_used = a->bytes_used = 0;
        return a;
    }
    const redisReadTask *root = task->parent;
    while (root->parent)
        root = root->parent;
    const reply_node_t *top = root->obj;
    if (!top || top->arena != a)
        return NULL;
    if (a->nodes_used < a->nodes_cap)
        return a;
    a->nodes_short++;
    return NULL;
}

static reply_node_t *node_new(const redisReadTask *task, int type) {
    rk_reply_arena_t *a = arena_for(task);
    reply_node_t *n;
    if (a) {
        n = &a->nodes[a->nodes_used++];
        memset(n, 0, sizeof *n);
        n->arena = a;
    } else {
        n = calloc(1, sizeof *n);
        if (!n)
            return NULL;
    }
    n->reply.type = type;
    return n;
}

/* Hangs a finished object on its parent array: after its parts, so that an
 * object that failed is never reachable from a reply. */
static void *node_link(const redisReadTask *task, reply_node_t *n) {
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &n->reply;
    }
    return n;
}

/* size zeroed bytes for a part of n: in its arena when they fit, else on the heap. */
static void *part_new(reply_node_t *n, size_t size) {
    rk_reply_arena_t *a = n->arena;
    size_t aligned = (size + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
    if (a && aligned >= size && aligned <= a->bytes_cap - a->bytes_used) {
        void *p = a->bytes + a->bytes_used;
        a->bytes_used += aligned;
        memset(p, 0, size);
        return p;
    }
    if (a && aligned >= size)
        a->bytes_short += aligned;
    return calloc(1, size); /* never 0: a string has its NUL, an array elements */
}

static void part_free(const reply_node_t *n, void *p) {
    const rk_reply_arena_t *a = n->arena;
    if (a && (uintptr_t)p >= (uintptr_t)a->bytes &&
        (uintptr_t)p < (uintptr_t)a->bytes + a->bytes_cap)
        return;
    free(p);
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
    if (len == SIZE_MAX)
        return NULL;
    reply_node_t *n = node_new(task, task->type);
    if (!n)
        return NULL;
    char *copy = part_new(n, len + 1);
    if (!copy) {
        rk_reply_free(&n->reply);
        return NULL;
    }
    memcpy(copy, str, len);
    n->reply.str = copy;
    n->reply.len = len;
    return node_link(task, n);
}

#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
typedef size_t elements_t;
#else
typedef int elements_t;
#endif

static void *create_array(const redisReadTask *task, elements_t elements) {
    if ((size_t)elements > SIZE_MAX / sizeof(redisReply *))
        return NULL;
    reply_node_t *n = node_new(task, REDIS_REPLY_ARRAY);
    if (!n)
        return NULL;
    if (elements > 0) {
        n->reply.element = part_new(n, (size_t)elements * sizeof(redisReply *));
        if (!n->reply.element) {
            rk_reply_free(&n->reply);
            return NULL;
        }
    }
    n->reply.elements = (size_t)elements;
    return node_link(task, n);
}

static void *create_integer(const redisReadTask *task, long long value) {
    reply_node_t *n = node_new(task, REDIS_REPLY_INTEGER);
    if (!n)
        return NULL;
    n->reply.integer = value;
    return node_link(task, n);
}

static void *create_nil(const redisReadTask *task) {
    reply_node_t *n = node_new(task, REDIS_REPLY_NIL);
    return n ? node_link(task, n) : NULL;
}

static void free_object(void *reply) {
    rk_reply_free(reply);
}

static redisReplyObjectFunctions arena_fns = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

bool rk_reply_arena_attach(redisReader *reader) {
    if (reader->fn == &arena_fns)
        return true;
    rk_reply_arena_t *a = calloc(1, sizeof *a);
    if (a) {
        a->nodes = malloc(ARENA_NODES * sizeof *a->nodes);
        a->bytes = malloc(ARENA_BYTES);
    }
    if (!a || !a->nodes || !a->bytes) {
        arena_free(a);
        return false;
    }
    a->nodes_cap = ARENA_NODES;
    a->bytes_cap = ARENA_BYTES;
    reader->fn = &arena_fns;
    reader->privdata = a;
    return true;
}

void rk_reply_free(redisReply *reply) {
    if (!reply)
        return;
    reply_node_t *n = (reply_node_t *)reply;
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements && reply->element; i++)
            rk_reply_free(reply->element[i]);
        part_free(n, reply->element);
    } else if (reply->str) {
        part_free(n, reply->str);
    }
    rk_reply_arena_t *a = n->arena;
    if (!a) {
        free(n);
    } else if (n == &a->nodes[0]) {
        a->held = false;
        if (a->orphaned)
            arena_free(a);
    }
}

redisReply *rk_reply_plain_copy(const redisReply *reply) {
    redisReply *copy = calloc(1, sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *reply;
    copy->str = NULL;
    copy->element = NULL;
    copy->elements = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        copy->element = calloc(reply->elements, sizeof *copy->element);
        if (!copy->element) {
            freeReplyObject(copy);
            return NULL;
        }
        copy->elements = reply->elements;
        for (size_t i = 0; i < reply->elements; i++) {
            if (reply->element[i] && !(copy->element[i] = rk_reply_plain_copy(reply->element[i]))) {
                freeReplyObject(copy);
                return NULL;
            }
        }
    } else if (reply->str) {
        if (!(copy->str = malloc(reply->len + 1))) {
            freeReplyObject(copy);
            return NULL;
        }
        memcpy(copy->str, reply->str, reply->len + 1);
    }
    return copy;
}

/* The arena of a reader that is gone: freed now, or with the reply still out. */
static void arena_release(rk_reply_arena_t *a) {
    if (a && a->held)
        a->orphaned = true; /* a reply still out: the arena goes with it */
    else
        arena_free(a);
}

void rk_reply_context_free(redisContext *ctx) {
    if (!ctx)
        return;
    rk_reply_arena_t *a = ctx->reader->fn == &arena_fns ? ctx->reader->privdata : NULL;
    redisFree(ctx); /* frees a half-read reply, through the arena's functions */
    arena_release(a);
}

void rk_reply_reader_free(redisReader *reader) {
    if (!reader)
        return;
    rk_reply_arena_t *a = reader->fn == &arena_fns ? reader->privdata : NULL;
    redisReaderFree(reader);
    arena_release(a);
}
