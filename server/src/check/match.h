/*
 * match.h — which requests a rule covers: methods, path pattern, hosts and
 * header equality, compiled once per ruleset snapshot so that a check
 * compares bytes and never parses a rule.
 */
#ifndef RK_MATCH_H
#define RK_MATCH_H

#include "../common.h"

#define RK_PATH_MAX 2048 /* longest request path considered */
#define RK_MATCH_MAX_SEGMENTS 32
#define RK_MATCH_PATTERN_MAX 512 /* bytes of a rule's path pattern */

/* Method bits; a rule with no methods covers every method. */
enum {
    RK_METHOD_GET = 1u << 0,
    RK_METHOD_HEAD = 1u << 1,
    RK_METHOD_POST = 1u << 2,
    RK_METHOD_PUT = 1u << 3,
    RK_METHOD_PATCH = 1u << 4,
    RK_METHOD_DELETE = 1u << 5,
    RK_METHOD_OPTIONS = 1u << 6,
    RK_METHOD_CONNECT = 1u << 7,
    RK_METHOD_TRACE = 1u << 8,
    RK_METHOD_OTHER = 1u << 9
};

typedef struct {
    char *name; /* lower-case */
    char *value;
} rk_header_eq_t;

typedef struct {
    uint32_t methods; /* 0: any */
    char *path;       /* the pattern as written; NULL: any path */
    /* the pattern split at '/': "*" is a wildcard segment */
    char *segments[RK_MATCH_MAX_SEGMENTS];
    size_t nsegments;
    bool prefix;  /* the pattern ends in a "*" segment: it covers everything below */
    char **hosts; /* lower-case; "*.example.com" covers subdomains */
    size_t nhosts;
    rk_header_eq_t *headers;
    size_t nheaders;
} rk_match_t;

/* What a rule is matched against (a forward-auth or context-form request). */
typedef struct {
    uint32_t method;  /* one RK_METHOD_ bit */
    const char *path; /* normalised (rk_path_normalize) */
    const char *host; /* lower-case, without port; "" when unknown */
    /* Looks a request header up by name (case-insensitive); NULL when absent. */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
} rk_match_request_t;

/* The bit of a method name; RK_METHOD_OTHER for unknown names, 0 for "". */
uint32_t rk_method_bit(const char *name);
/* The name of the i-th known method, in the order of their bits (GET first); NULL past the last. */
const char *rk_method_name(size_t i);

/* Whether a path pattern is acceptable: "/login", "/api/" "*", "/users/" "*" "/orders". */
bool rk_path_pattern_valid(const char *pattern, const char **why);

/*
 * Normalises a request target into out (cap bytes): drops the query and
 * fragment, decodes percent-escapes, merges repeated slashes, and resolves
 * "." and ".." segments, so "/a//b/../%6Cogin?x" is "/a/login". RK_ERR when
 * the result does not fit or the target is not a path.
 */
rk_status_t rk_path_normalize(const char *target, size_t len, char *out, size_t cap);

/* Compiles the parts of a match; RK_ERR on an invalid pattern or no memory. */
rk_status_t rk_match_set_path(rk_match_t *m, const char *pattern);
rk_status_t rk_match_add_host(rk_match_t *m, const char *host);
rk_status_t rk_match_add_header(rk_match_t *m, const char *name, const char *value);
void rk_match_free(rk_match_t *m);

/* Whether the request is covered by the match. */
bool rk_match_request(const rk_match_t *m, const rk_match_request_t *req);

/* Whether the path alone is covered by the pattern part of m. */
bool rk_match_path(const rk_match_t *m, const char *path);

#endif
