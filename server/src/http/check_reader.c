/*
 * check_reader.c — see check_reader.h.
 *
 * A recursive-descent reader over [p, end): each function takes the
 * position of the first byte of its value and returns the position after
 * it, or NULL when the text is not JSON (or for a duplicate member,
 * with r->status set). Nothing is allocated: member values
 * land in the caller's body (a check's, a batch's or a release's), strings
 * are decoded over their own bytes.
 */
#include "check_reader.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where a value sits, for what is read from its members (from its elements, for IN_CHECKS). */
typedef enum {
    IN_ROOT,    /* a check */
    IN_REQUEST, /* its "request" */
    IN_HEADERS, /* and their "headers" */
    IN_BATCH,   /* a batch */
    IN_CHECKS,  /* its "checks" array */
    IN_ENTRY,   /* one of them */
    IN_RELEASE, /* a release */
    IN_OTHER
} place_t;

typedef struct {
    const char *end;
    rk_check_read_status_t status;
    rk_check_body_t *b;       /* a check's body, or NULL */
    rk_check_batch_t *batch;  /* a batch's body, or NULL */
    rk_check_entry_t *entry;  /* the batch entry being read */
    rk_release_body_t *lease; /* a release's body, or NULL */
} reader_t;

static char *value(reader_t *r, char *p, int depth, place_t place, rk_jv_t *out);

static char *skip_ws(reader_t *r, char *p) {
    while (p < r->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 when not hex. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Writes code point cp (not a surrogate, not 0) as UTF-8 at w; the new end. */
static char *put_utf8(char *w, unsigned long cp) {
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/*
 * A string whose opening quote is at p. Decodes it over its own bytes
 * (UTF-8 of a \u escape is never longer than the escape), NUL-terminates it
 * and sets *s and *len. Returns the position after the closing quote.
 */
static char *string(reader_t *r, char *p, const char **s, size_t *len) {
    const char *start = ++p;
    /* Most strings (rule ids, keys, names) hold no escape: their bytes stay
     * where they are and the scan stops at the closing quote. */
    while (p < r->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    char *w = p; /* decoded bytes are written from here; w <= p always */
    while (p < r->end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *len = (size_t)(w - start);
            *w = '\0'; /* at or before the closing quote, already read */
            *s = start;
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c != '\\') {
            *w++ = *p++;
            continue;
        }
        if (++p >= r->end)
            return NULL;
        char e = *p++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *w++ = e;
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            if (r->end - p < 4)
                return NULL;
            long cp = hex4(p);
            p += 4;
            if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return NULL; /* \u0000 or a lone low surrogate */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return NULL;
                long lo = hex4(p + 2);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return NULL;
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            w = put_utf8(w, (unsigned long)cp);
            break;
        }
        default:
            return NULL;
        }
    }
    return NULL;
}

/* A number at p, by the JSON grammar; its value in *num. */
static char *number(reader_t *r, char *p, double *num) {
    char *start = p;
    bool integer = true;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < r->end && *p == '.') {
        integer = false;
        if (++p >= r->end || *p < '0' || *p > '9')
            return NULL;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return NULL;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    bool negative = *start == '-';
    if (integer && n - negative <= 15) { /* below 2^53: exact without strtod */
        int64_t v = 0;
        for (const char *d = start + negative; d < p; d++)
            v = v * 10 + (*d - '0');
        *num = negative ? -(double)v : (double)v;
        return p;
    }
    char text[512];
    if (n >= sizeof text) {
        *num = NAN; /* valid JSON, but no integer a check could use */
        return p;
    }
    memcpy(text, start, n);
    text[n] = '\0';
    errno = 0;
    double v = strtod(text, NULL);
    /* Out of a double's range: 1e-400 would read as 0, 1e400 as infinity. */
    *num = errno == ERANGE ? NAN : v;
    return p;
}

static char *literal(reader_t *r, char *p, const char *word, size_t n) {
    if ((size_t)(r->end - p) < n || memcmp(p, word, n) != 0)
        return NULL;
    return p + n;
}

/* The member of a check a name designates in its place; NULL when ratekit does not read it. */
static rk_jv_t *check_slot(rk_check_body_t *b, place_t place, const char *name) {
    if (place == IN_ROOT) {
        if (!strcmp(name, "rule"))
            return &b->rule;
        if (!strcmp(name, "key"))
            return &b->key;
        if (!strcmp(name, "cost"))
            return &b->cost;
        if (!strcmp(name, "request"))
            return &b->request;
    } else if (place == IN_REQUEST) {
        if (!strcmp(name, "method"))
            return &b->method;
        if (!strcmp(name, "path"))
            return &b->path;
        if (!strcmp(name, "host"))
            return &b->host;
        if (!strcmp(name, "ip"))
            return &b->ip;
        if (!strcmp(name, "headers"))
            return &b->headers;
    }
    return NULL;
}

/* The member of a batch entry a name designates; NULL when ratekit does not read it. */
static rk_jv_t *entry_slot(rk_check_entry_t *e, const char *name) {
    if (!strcmp(name, "rule"))
        return &e->rule;
    if (!strcmp(name, "key"))
        return &e->key;
    if (!strcmp(name, "cost"))
        return &e->cost;
    if (!strcmp(name, "request"))
        return &e->request;
    return NULL;
}

/*
 * A header's slot in "headers" (*slot; left on scratch for a header past the
 * bound that ratekit does not read by name: ignored). False (r->status set)
 * when a header is given twice.
 */
static bool header_slot(reader_t *r, const char *name, size_t name_len, rk_jv_t **slot) {
    rk_check_body_t *b = r->b;
    for (size_t i = 0; i < b->nheaders; i++) { /* length first: cheap per ignored header */
        if (b->header[i].name_len == name_len &&
            !strcasecmp(b->header[i].name, name)) { /* names are case-blind */
            r->status = RK_CHECK_READ_DUPLICATE;
            return false;
        }
    }
    /* Past the bound only a name ratekit always reads is kept (each at most
     * once: a second one is a duplicate above). */
    if (b->nheaders < RK_CHECK_READER_MAX_HEADERS ||
        (b->nheaders < RK_ARRAY_LEN(b->header) && rk_check_reader_always_reads(name))) {
        b->header[b->nheaders].name = name;
        b->header[b->nheaders].name_len = name_len;
        *slot = &b->header[b->nheaders++].value;
    }
    return true;
}

/*
 * Where the value of member `name` of an object in `place` is read (*slot,
 * scratch when ratekit does not read it) and the place of its own members
 * (*inner). False (r->status set) when the body is refused for it.
 */
static bool member_slot(reader_t *r, place_t place, const char *name, size_t name_len,
                        rk_jv_t **slot, place_t *inner) {
    rk_jv_t *known = NULL;
    *inner = IN_OTHER;
    switch (place) {
    case IN_ROOT:
    case IN_REQUEST:
        known = check_slot(r->b, place, name);
        if (known == &r->b->request)
            *inner = IN_REQUEST;
        else if (known == &r->b->headers)
            *inner = IN_HEADERS;
        break;
    case IN_HEADERS:
        return header_slot(r, name, name_len, slot);
    case IN_BATCH:
        known = !strcmp(name, "checks") ? &r->batch->checks : NULL;
        *inner = IN_CHECKS;
        break;
    case IN_ENTRY:
        known = entry_slot(r->entry, name);
        if (known && known->kind != RK_JV_ABSENT) {
            r->entry->duplicate = true; /* this entry is refused, the others stand */
            return true;
        }
        break;
    case IN_RELEASE:
        known = !strcmp(name, "lease") ? &r->lease->lease : NULL;
        break;
    default:
        break;
    }
    if (!known)
        return true;
    if (known->kind != RK_JV_ABSENT) {
        r->status = RK_CHECK_READ_DUPLICATE;
        return false;
    }
    *slot = known;
    return true;
}

/*
 * An object at p ('{'). Members of the places ratekit reads are recorded
 * (member_slot); the others are checked for syntax only.
 */
static char *object(reader_t *r, char *p, int depth, place_t place) {
    p = skip_ws(r, p + 1);
    if (p < r->end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= r->end || *p != '"')
            return NULL;
        const char *name;
        size_t name_len;
        p = string(r, p, &name, &name_len);
        if (!p)
            return NULL;
        p = skip_ws(r, p);
        if (p >= r->end || *p != ':')
            return NULL;
        p = skip_ws(r, p + 1);
        if (p >= r->end)
            return NULL;
        rk_jv_t scratch;
        rk_jv_t *slot = &scratch;
        place_t inner = IN_OTHER;
        if (!member_slot(r, place, name, name_len, &slot, &inner))
            return NULL;
        p = value(r, p, depth, slot == &scratch ? IN_OTHER : inner, slot);
        if (!p)
            return NULL;
        p = skip_ws(r, p);
        if (p >= r->end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(r, p + 1);
    }
}

/*
 * An element of an array in `place`: an entry of a batch's "checks" is read
 * into the batch (the first RK_CHECK_READER_BATCH_MAX; all are counted),
 * anything else for syntax only.
 */
static char *element(reader_t *r, char *p, int depth, place_t place) {
    rk_jv_t scratch;
    if (place != IN_CHECKS)
        return value(r, p, depth, IN_OTHER, &scratch);
    rk_check_batch_t *batch = r->batch;
    if (batch->n++ >= RK_CHECK_READER_BATCH_MAX)
        return value(r, p, depth, IN_OTHER, &scratch);
    rk_check_entry_t *e = &batch->entry[batch->n - 1];
    memset(e, 0, sizeof *e);
    r->entry = e;
    p = value(r, p, depth, IN_ENTRY, &scratch);
    e->kind = scratch.kind;
    return p;
}

static char *array(reader_t *r, char *p, int depth, place_t place) {
    p = skip_ws(r, p + 1);
    if (p < r->end && *p == ']')
        return p + 1;
    for (;;) {
        p = element(r, p, depth, place);
        if (!p)
            return NULL;
        p = skip_ws(r, p);
        if (p >= r->end)
            return NULL;
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(r, p + 1);
    }
}

/*
 * Any value at p (whitespace already skipped) into *out. `place` is the
 * place its members (or, for IN_CHECKS, its elements) belong to.
 */
static char *value(reader_t *r, char *p, int depth, place_t place, rk_jv_t *out) {
    memset(out, 0, sizeof *out);
    if (p >= r->end)
        return NULL;
    switch (*p) {
    case '{':
        if (depth >= RK_CHECK_READER_DEPTH)
            return NULL;
        out->kind = RK_JV_OBJECT;
        return object(r, p, depth + 1, place);
    case '[':
        if (depth >= RK_CHECK_READER_DEPTH)
            return NULL;
        out->kind = RK_JV_ARRAY;
        return array(r, p, depth + 1, place);
    case '"':
        out->kind = RK_JV_STRING;
        return string(r, p, &out->str, &out->len);
    case 't':
        out->kind = RK_JV_TRUE;
        return literal(r, p, "true", 4);
    case 'f':
        out->kind = RK_JV_FALSE;
        return literal(r, p, "false", 5);
    case 'n':
        out->kind = RK_JV_NULL;
        return literal(r, p, "null", 4);
    default:
        out->kind = RK_JV_NUMBER;
        return number(r, p, &out->num);
    }
}

/* Reads the whole body as one value, whose members belong to root_place; its kind in *root. */
static rk_check_read_status_t read_body(reader_t *r, char *buf, place_t root_place,
                                        rk_jv_kind_t *root) {
    char *p = skip_ws(r, buf);
    rk_jv_t v;
    p = value(r, p, 0, root_place, &v);
    if (!p)
        return r->status != RK_CHECK_READ_OK ? r->status : RK_CHECK_READ_INVALID_JSON;
    if (skip_ws(r, p) != r->end)
        return RK_CHECK_READ_INVALID_JSON; /* trailing bytes */
    *root = v.kind;
    return RK_CHECK_READ_OK;
}

rk_check_read_status_t rk_check_read(char *buf, size_t len, rk_check_body_t *out) {
    memset(out, 0, offsetof(rk_check_body_t, header));
    out->nheaders = 0;
    reader_t r = {.end = buf + len, .status = RK_CHECK_READ_OK, .b = out};
    /* "request" members count only when it is an object (IN_REQUEST was used
     * for it whatever its kind; a non-object has no members). */
    return read_body(&r, buf, IN_ROOT, &out->root);
}

rk_check_read_status_t rk_check_read_batch(char *buf, size_t len, rk_check_batch_t *out) {
    out->root = RK_JV_ABSENT;
    out->checks = (rk_jv_t){0};
    out->n = 0; /* entries are cleared as they are read */
    reader_t r = {.end = buf + len, .status = RK_CHECK_READ_OK, .batch = out};
    return read_body(&r, buf, IN_BATCH, &out->root);
}

rk_check_read_status_t rk_check_read_release(char *buf, size_t len, rk_release_body_t *out) {
    memset(out, 0, sizeof *out);
    reader_t r = {.end = buf + len, .status = RK_CHECK_READ_OK, .lease = out};
    return read_body(&r, buf, IN_RELEASE, &out->root);
}

bool rk_jv_int(const rk_jv_t *v, int64_t lo, int64_t hi, int64_t *out) {
    if (v->kind == RK_JV_ABSENT || v->kind == RK_JV_NULL)
        return true;
    if (v->kind != RK_JV_NUMBER)
        return false;
    double d = v->num;
    if (d != d || d < (double)lo || d > (double)hi || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* The headers ratekit reads by their own name: check/context.c (the
 * forwarding headers, Authorization, X-Plan) and check/identity.c (the
 * user and api_key key parts). One slot each past the bound. */
static const char *const always_read[RK_CHECK_READER_ALWAYS_READ] = {
    "x-forwarded-for", "forwarded", "x-real-ip", "authorization",
    "x-user-id",       "x-api-key", "x-plan",
};

bool rk_check_reader_always_reads(const char *name) {
    for (size_t i = 0; i < RK_ARRAY_LEN(always_read); i++)
        if (!strcasecmp(always_read[i], name))
            return true;
    return false;
}

const char *rk_check_body_header(const rk_check_body_t *b, const char *name) {
    for (size_t i = 0; i < b->nheaders; i++)
        if (b->header[i].value.kind == RK_JV_STRING && !strcasecmp(b->header[i].name, name))
            return b->header[i].value.str;
    return NULL;
}
