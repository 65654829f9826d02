/*
 * check_reader.h — a strict JSON reader for the body of POST /v1/check and
 * /v1/acquire, without allocation:
 *
 *     {"rule": "...", "key": "...", "cost": 1}
 *     {"request": {"method", "path", "host", "ip", "headers": {...}}, "cost": 1}
 *
 * The body must be exactly one JSON value (RFC 8259), whitespace around it
 * allowed, nothing after it. Strings are decoded in place: each decoded
 * string is written over its own escaped form (never longer) and
 * NUL-terminated there, so the caller's buffer must be writable and the
 * results point into it. Refused as invalid JSON: raw control characters
 * in strings, bad escapes, lone surrogates, "\u0000", numbers outside the
 * grammar, nesting deeper than RK_CHECK_READER_DEPTH. A member ratekit
 * reads ("rule", "key", "cost", "request" and those of "request") given
 * twice in its object, or a header name given twice in "headers" (in any
 * mix of cases: header names are case-insensitive), is
 * refused (RK_CHECK_READ_DUPLICATE): no other reader of the body can
 * disagree with ratekit about which one counts. Members ratekit does not
 * know are checked for syntax and ignored.
 *
 * The same reader, with the same refusals, reads the bodies of POST
 * /v1/check/batch (rk_check_read_batch) and /v1/release
 * (rk_check_read_release), so that every data-plane body means the same
 * thing to ratekit as to any other strict reader.
 *
 * "headers" is read up to a bound, and a request with more headers is still
 * judged: the first RK_CHECK_READER_MAX_HEADERS are kept, and past them only
 * the headers ratekit reads by their own name (rk_check_reader_always_reads:
 * the forwarding headers, Authorization and the identity headers), so that
 * a client sending many headers cannot push a proxy's X-Forwarded-For or a
 * gateway's X-User-Id out of reach. Any other header past the bound is
 * checked for syntax and ignored, as if absent (a `header:<Name>` key part or
 * a match on it then falls back as for a request without it). A header past
 * the bound that repeats the name of a kept one is still a duplicate; two
 * ignored ones repeating each other are not looked for (neither counts).
 *
 * The admin plane keeps cJSON; this is the data plane's hot path.
 */
#ifndef RK_CHECK_READER_H
#define RK_CHECK_READER_H

#include "../common.h"

#define RK_CHECK_READER_DEPTH 64
#define RK_CHECK_READER_MAX_HEADERS 64
/* How many names rk_check_reader_always_reads knows: the slots past the bound. */
#define RK_CHECK_READER_ALWAYS_READ 7

typedef enum {
    RK_JV_ABSENT = 0,
    RK_JV_NULL,
    RK_JV_FALSE,
    RK_JV_TRUE,
    RK_JV_NUMBER,
    RK_JV_STRING,
    RK_JV_ARRAY,
    RK_JV_OBJECT,
} rk_jv_kind_t;

/* One member's value as read. */
typedef struct {
    rk_jv_kind_t kind;
    const char *str; /* RK_JV_STRING: decoded, NUL-terminated (no NUL inside) */
    size_t len;      /* its length in bytes */
    double num;      /* RK_JV_NUMBER: its value (exact for integers below 2^53) */
} rk_jv_t;

typedef struct {
    const char *name; /* decoded, NUL-terminated */
    size_t name_len;  /* its length in bytes */
    rk_jv_t value;
} rk_check_header_t;

/* What a check body holds: every member ratekit reads, and their kinds. */
typedef struct {
    rk_jv_kind_t root; /* the body's value: RK_JV_OBJECT for a check */
    rk_jv_t rule, key, cost;
    rk_jv_t request; /* kind only: the members below are read when it is an object */
    rk_jv_t method, path, host, ip;
    rk_jv_t headers; /* kind only */
    /* in the body's order: the first RK_CHECK_READER_MAX_HEADERS, then the
     * always-read ones found past them */
    rk_check_header_t header[RK_CHECK_READER_MAX_HEADERS + RK_CHECK_READER_ALWAYS_READ];
    size_t nheaders;
} rk_check_body_t;

typedef enum {
    RK_CHECK_READ_OK = 0,
    RK_CHECK_READ_INVALID_JSON,
    RK_CHECK_READ_DUPLICATE, /* a member name twice in one object */
} rk_check_read_status_t;

/*
 * Reads buf[0..len) (writable; strings are decoded in place) into *out.
 * On anything but RK_CHECK_READ_OK, *out is partly filled and must not be used.
 */
rk_check_read_status_t rk_check_read(char *buf, size_t len, rk_check_body_t *out);

#define RK_CHECK_READER_BATCH_MAX 100

/* One entry of a batch's "checks" (the direct form only), as read. */
typedef struct {
    rk_jv_kind_t kind; /* the entry's value: RK_JV_OBJECT for a check */
    bool duplicate;    /* "rule", "key", "cost" or "request" given twice: the entry is refused */
    rk_jv_t rule, key, cost;
    rk_jv_t request; /* kind only: a batch does not take the context form */
} rk_check_entry_t;

/* What a batch body {"checks": [...]} holds. */
typedef struct {
    rk_jv_kind_t root; /* RK_JV_OBJECT for a batch */
    rk_jv_t checks;    /* kind only */
    size_t n;          /* entries of "checks" when an array, all counted... */
    rk_check_entry_t entry[RK_CHECK_READER_BATCH_MAX]; /* ...the first ones read */
} rk_check_batch_t;

/*
 * Reads a batch body as rk_check_read() reads a check. A duplicate member
 * within an entry marks that entry only; "checks" given twice refuses the
 * body (RK_CHECK_READ_DUPLICATE).
 */
rk_check_read_status_t rk_check_read_batch(char *buf, size_t len, rk_check_batch_t *out);

/* What a release body {"lease": "..."} holds. */
typedef struct {
    rk_jv_kind_t root; /* RK_JV_OBJECT for a release */
    rk_jv_t lease;
} rk_release_body_t;

/* Reads a release body as rk_check_read() reads a check ("lease" twice: RK_CHECK_READ_DUPLICATE).
 */
rk_check_read_status_t rk_check_read_release(char *buf, size_t len, rk_release_body_t *out);

/*
 * Reads an optional integer member within [lo, hi] (absent or null: *out is
 * left alone); false when present and not such an integer.
 */
bool rk_jv_int(const rk_jv_t *v, int64_t lo, int64_t hi, int64_t *out);

/*
 * Whether ratekit's own code reads a header of this name (ASCII
 * case-insensitive) whatever the rules: X-Forwarded-For, Forwarded and
 * X-Real-IP (the client's address behind a trusted proxy), Authorization (a
 * JWT), X-User-Id, X-API-Key and X-Plan. Such a header is kept past the bound.
 */
bool rk_check_reader_always_reads(const char *name);

/* The first header whose name matches (ASCII case-insensitive) and whose value is a string. */
const char *rk_check_body_header(const rk_check_body_t *b, const char *name);

#endif
