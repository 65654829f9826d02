/*
 * jsonw.c — see jsonw.h.
 */
#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

void rk_jw_init(rk_jw_t *w, char *stack_buf, size_t cap) {
    w->buf = stack_buf;
    w->len = 0;
    w->cap = cap;
    w->on_heap = false;
    w->failed = false;
    w->buf[0] = '\0';
}

void rk_jw_free(rk_jw_t *w) {
    if (w->on_heap)
        free(w->buf);
    w->on_heap = false;
}

/* Makes room for n more bytes and the NUL, on the heap; false when out of memory. */
static bool grow(rk_jw_t *w, size_t n) {
    if (w->failed)
        return false;
    size_t cap = w->cap * 2;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *p = w->on_heap ? realloc(w->buf, cap) : malloc(cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    if (!w->on_heap)
        memcpy(p, w->buf, w->len + 1);
    w->buf = p;
    w->cap = cap;
    w->on_heap = true;
    return true;
}

static inline bool reserve(rk_jw_t *w, size_t n) {
    if (RK_LIKELY(!w->failed && w->len + n + 1 <= w->cap))
        return true;
    return grow(w, n);
}

void rk_jw_raw(rk_jw_t *w, const char *s, size_t n) {
    if (!reserve(w, n))
        return;
    // cppcheck-suppress uninitvar ; every caller passes n written bytes
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void rk_jw_lit(rk_jw_t *w, const char *s) {
    rk_jw_raw(w, s, strlen(s));
}

/* Whether a byte must be escaped in a JSON string (as rk_jw_str escapes it). */
static inline bool needs_escape(unsigned char c) {
    return c < 0x20 || c == '"' || c == '\\' || c == 0x7f;
}

void rk_jw_str(rk_jw_t *w, const char *s) {
    static const char hex[] = "0123456789abcdef";
    rk_jw_raw(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    for (;;) {
        const unsigned char *run = p; /* bytes written as they are, in one copy */
        while (*p && !needs_escape(*p))
            p++;
        if (p > run)
            rk_jw_raw(w, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            rk_jw_raw(w, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            rk_jw_raw(w, esc, 6);
        }
        p++;
    }
    rk_jw_raw(w, "\"", 1);
}

void rk_jw_int(rk_jw_t *w, int64_t v) {
    char num[RK_INT_TEXT_MAX];
    rk_jw_raw(w, num, rk_format_int(v, num));
}

void rk_jw_plain_str(rk_jw_t *w, const char *s) {
    size_t n = strlen(s);
    if (!reserve(w, n + 2))
        return;
    char *p = w->buf + w->len;
    p[0] = '"';
    memcpy(p + 1, s, n);
    p[n + 1] = '"';
    w->len += n + 2;
    w->buf[w->len] = '\0';
}

/* Writes ,"name": (one reservation, one pass) and room for extra more bytes. */
static void member(rk_jw_t *w, const char *name, size_t n, size_t extra) {
    if (!reserve(w, n + 4 + extra))
        return;
    char *p = w->buf + w->len;
    p[0] = ',';
    p[1] = '"';
    memcpy(p + 2, name, n);
    p[n + 2] = '"';
    p[n + 3] = ':';
    w->len += n + 4;
    w->buf[w->len] = '\0';
}

void rk_jw_member_int_n(rk_jw_t *w, const char *name, size_t name_len, int64_t v) {
    member(w, name, name_len, RK_INT_TEXT_MAX);
    if (w->failed)
        return;
    w->len += rk_format_int(v, w->buf + w->len); /* room reserved above */
}

void rk_jw_member_str_n(rk_jw_t *w, const char *name, size_t name_len, const char *v) {
    member(w, name, name_len, 0);
    rk_jw_str(w, v);
}

void rk_jw_member_bool_n(rk_jw_t *w, const char *name, size_t name_len, bool v) {
    member(w, name, name_len, 0);
    rk_jw_lit(w, v ? "true" : "false");
}

void rk_jw_member_plain_n(rk_jw_t *w, const char *name, size_t name_len, const char *v) {
    member(w, name, name_len, 0);
    rk_jw_plain_str(w, v);
}
