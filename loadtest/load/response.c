/*
 * response.c — a small HTTP/1.1 response reader for the load loop: it
 * parses from the start each time more bytes arrive (answers are a few
 * hundred bytes, so usually in one read), allocates nothing, and knows
 * just the headers that frame a response, and the answer's top-level
 * JSON members it counts by.
 */
#include "response.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEAD 16384

/* Past the white space (JSON's, and a header value's trailing CR) at p. */
static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* The value of a header line "Name: value" when its name is `name`, else NULL. */
static const char *header_value(const char *line, size_t len, const char *name) {
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    const char *v = line + n + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    return v;
}

/* Whether the value [v, end) holds token (case-insensitive), e.g. "close". */
static bool value_has(const char *v, const char *end, const char *token) {
    size_t n = strlen(token);
    for (; v + n <= end; v++)
        if (!strncasecmp(v, token, n))
            return true;
    return false;
}

/*
 * A size in digits of the given base, at p, up to LT_RESPONSE_MAX; -1 when
 * p holds no digit or the size is larger (an answer that long is an error,
 * so a huge or endless size fails at once instead of being awaited).
 */
static long size_at(const char *p, const char *end, int base, const char **stop) {
    long size = 0;
    const char *start = p;
    for (; p < end; p++) {
        int digit = *p >= '0' && *p <= '9'                 ? *p - '0'
                    : base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : base == 16 && *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                                           : -1;
        if (digit < 0)
            break;
        size = size * base + digit;
        if (size > LT_RESPONSE_MAX)
            return -1;
    }
    *stop = p;
    return p == start ? -1 : size;
}

/*
 * Walks a chunked body starting at p. Returns 1 with *done at the end of
 * its last "0\r\n...\r\n\r\n", 0 when incomplete, -1 when malformed.
 */
static int chunked_end(const char *p, const char *end, const char **done) {
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return 0;
        const char *num_end;
        long size = size_at(p, eol, 16, &num_end);
        if (size < 0)
            return -1;
        p = eol + 1;
        if (size == 0) {
            /* trailers, then an empty line */
            for (;;) {
                const char *line_end = memchr(p, '\n', (size_t)(end - p));
                if (!line_end)
                    return 0;
                bool empty = line_end == p || (line_end == p + 1 && *p == '\r');
                p = line_end + 1;
                if (empty) {
                    *done = p;
                    return 1;
                }
            }
        }
        if (end - p < size + 2)
            return 0;
        p += size + 2;
    }
}

/*
 * Joins the data of the complete chunked body [body, end) at body, in
 * place (the data moves only towards the start); returns its length.
 */
static size_t join_chunks(char *body, const char *end) {
    const char *p = body;
    size_t joined = 0;
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *num_end;
        long size = eol ? size_at(p, eol, 16, &num_end) : 0;
        if (size <= 0)
            return joined;
        memmove(body + joined, eol + 1, (size_t)size);
        joined += (size_t)size;
        p = eol + 1 + size + 2;
    }
}

long lt_response_parse(char *buf, size_t len, bool at_eof, lt_response_t *out) {
    const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
    /* a head ended by a bare LF: not the CRLF HTTP/1.1 framing, and never
     * complete for this reader, so an error rather than an endless wait */
    if (memmem(buf, head_end ? (size_t)(head_end - buf) : len, "\n\n", 2))
        return -1;
    if (!head_end)
        return len > MAX_HEAD ? -1 : 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    bool http10 = buf[7] == '0';
    out->status = atoi(buf + 9);
    if (out->status < 100 || out->status > 999)
        return -1;
    out->close = http10;
    long content_length = -1;
    bool chunked = false;
    const char *line = (const char *)memchr(buf, '\n', (size_t)(head_end + 2 - buf)) + 1;
    while (line < head_end + 2) {
        const char *eol = memchr(line, '\n', (size_t)(head_end + 2 - line));
        if (!eol)
            break;
        size_t line_len = (size_t)(eol - line);
        const char *v, *num_end;
        if ((v = header_value(line, line_len, "Content-Length"))) {
            content_length = size_at(v, eol, 10, &num_end);
            if (content_length < 0 || skip_space(num_end, eol) != eol)
                return -1; /* not a length, or one longer than any answer may be */
        } else if ((v = header_value(line, line_len, "Transfer-Encoding")))
            chunked = value_has(v, eol, "chunked");
        else if ((v = header_value(line, line_len, "Connection")))
            out->close = value_has(v, eol, "close") || (http10 && !value_has(v, eol, "keep-alive"));
        line = eol + 1;
    }
    char *body = buf + (head_end + 4 - buf);
    const char *end = buf + len;
    out->body = body;
    out->body_len = 0;
    if (out->status < 200 || out->status == 204 || out->status == 304)
        return (long)(body - buf);
    if (chunked) {
        const char *e = NULL;
        int state = chunked_end(body, end, &e);
        if (state <= 0)
            return state;
        out->body_len = join_chunks(body, e);
        return (long)(e - buf);
    }
    if (content_length < 0) {
        /* no length: the body runs to the close (an HTTP/1.0 answer's way) */
        if (!at_eof)
            return 0;
        out->body_len = (size_t)(end - body);
        out->close = true;
        return (long)len;
    }
    if ((size_t)(end - body) < (size_t)content_length)
        return 0;
    out->body_len = (size_t)content_length;
    return (long)(body - buf) + content_length;
}

/* ---- the answer's JSON ---------------------------------------------------- */

/* p at a string's opening quote: just past its closing quote, NULL if it has none. */
static const char *string_end(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* p at a value: just past it (a string, an object or array with all it
 * holds, or a literal or number), NULL if it is cut short. */
static const char *value_end(const char *p, const char *end) {
    if (p < end && *p == '"')
        return string_end(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = string_end(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < end && !strchr(",}] \t\r\n", *p))
        p++;
    return p;
}

/*
 * The value of the member `name` of the object the body is, at its top
 * level (a member of the same name inside "results" is not it): true with
 * [*value, *value_end) when there is one. ratekitd writes "allowed" first,
 * so the walk usually stops at the first member.
 */
static bool top_member(const lt_response_t *r, const char *name, const char **value,
                       const char **value_stop) {
    const char *end = r->body + r->body_len;
    const char *p = skip_space(r->body, end);
    size_t name_len = strlen(name);
    if (p == end || *p != '{')
        return false;
    for (p = skip_space(p + 1, end); p < end && *p == '"';) {
        const char *key = p + 1, *key_end = string_end(p, end);
        if (!key_end)
            return false;
        p = skip_space(key_end, end);
        if (p == end || *p != ':')
            return false;
        const char *v = skip_space(p + 1, end), *v_end = value_end(v, end);
        if (!v_end || v_end == v)
            return false;
        if ((size_t)(key_end - 1 - key) == name_len && !memcmp(key, name, name_len)) {
            *value = v;
            *value_stop = v_end;
            return true;
        }
        p = skip_space(v_end, end);
        if (p == end || *p != ',')
            return false;
        p = skip_space(p + 1, end);
    }
    return false;
}

/* Whether the top-level member `name` is the literal `literal` (true, false). */
static bool top_member_is(const lt_response_t *r, const char *name, const char *literal) {
    const char *v, *v_end;
    return top_member(r, name, &v, &v_end) && (size_t)(v_end - v) == strlen(literal) &&
           !memcmp(v, literal, (size_t)(v_end - v));
}

bool lt_response_says(const lt_response_t *r, bool allowed) {
    return top_member_is(r, "allowed", allowed ? "true" : "false");
}

bool lt_response_released(const lt_response_t *r) {
    return top_member_is(r, "released", "true");
}

bool lt_response_lease(const lt_response_t *r, char *out, size_t cap) {
    if (cap == 0)
        return false;
    out[0] = '\0';
    const char *v, *v_end;
    if (!top_member(r, "lease", &v, &v_end) || *v != '"')
        return false;
    size_t n = (size_t)(v_end - v) - 2; /* the text between the quotes, escapes kept */
    if (n >= cap)
        return false;
    memcpy(out, v + 1, n);
    out[n] = '\0';
    return true;
}
