/*
 * response.c — a small HTTP/1.1 response reader for the load loop: it
 * parses from the start each time more bytes arrive (answers are a few
 * hundred bytes, so usually in one read), allocates nothing, and knows
 * just the headers that frame a response.
 */
#include "response.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEAD 16384

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
 * Walks a chunked body starting at p. Returns 1 with *done at the end of
 * its last "0\r\n...\r\n\r\n", 0 when incomplete, -1 when malformed.
 */
static int chunked_end(const char *p, const char *end, const char **done) {
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return 0;
        char *num_end = NULL;
        unsigned long size = strtoul(p, &num_end, 16);
        if (num_end == p)
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
        if ((size_t)(end - p) < size + 2)
            return 0;
        p += size + 2;
    }
}

long lt_response_parse(const char *buf, size_t len, lt_response_t *out) {
    const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
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
        const char *v;
        if ((v = header_value(line, line_len, "Content-Length")))
            content_length = strtol(v, NULL, 10);
        else if ((v = header_value(line, line_len, "Transfer-Encoding")))
            chunked = value_has(v, eol, "chunked");
        else if ((v = header_value(line, line_len, "Connection")))
            out->close = value_has(v, eol, "close") || (http10 && !value_has(v, eol, "keep-alive"));
        line = eol + 1;
    }
    const char *body = head_end + 4;
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
        out->body_len = (size_t)(e - body);
        return (long)(e - buf);
    }
    if (content_length < 0)
        return -1;
    if ((size_t)(end - body) < (size_t)content_length)
        return 0;
    out->body_len = (size_t)content_length;
    return (long)(body - buf) + content_length;
}

/* Whether the body holds needle. */
static bool body_has(const lt_response_t *r, const char *needle) {
    return r->body_len && memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

bool lt_response_says(const lt_response_t *r, bool allowed) {
    return body_has(r, allowed ? "\"allowed\":true" : "\"allowed\":false");
}

bool lt_response_released(const lt_response_t *r) {
    return body_has(r, "\"released\":true");
}

bool lt_response_lease(const lt_response_t *r, char *out, size_t cap) {
    static const char member[] = "\"lease\":\"";
    if (cap == 0)
        return false;
    out[0] = '\0';
    const char *at = r->body_len ? memmem(r->body, r->body_len, member, sizeof member - 1) : NULL;
    if (!at)
        return false;
    const char *v = at + sizeof member - 1, *end = r->body + r->body_len;
    size_t n = 0;
    for (; v + n < end && v[n] != '"'; n++)
        if (v[n] == '\\')
            n++; /* an escaped character, whatever it is */
    if (v + n >= end || n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}
