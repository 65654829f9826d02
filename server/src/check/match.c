/*
 * match.c — see match.h.
 */
#include "match.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    uint32_t bit;
} methods[] = {
    {"GET", RK_METHOD_GET},         {"HEAD", RK_METHOD_HEAD},       {"POST", RK_METHOD_POST},
    {"PUT", RK_METHOD_PUT},         {"PATCH", RK_METHOD_PATCH},     {"DELETE", RK_METHOD_DELETE},
    {"OPTIONS", RK_METHOD_OPTIONS}, {"CONNECT", RK_METHOD_CONNECT}, {"TRACE", RK_METHOD_TRACE},
};

uint32_t rk_method_bit(const char *name) {
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < RK_ARRAY_LEN(methods); i++)
        if (!strcasecmp(name, methods[i].name))
            return methods[i].bit;
    return RK_METHOD_OTHER;
}

const char *rk_method_name(size_t i) {
    return i < RK_ARRAY_LEN(methods) ? methods[i].name : NULL;
}

/* ---- paths ----------------------------------------------------------------- */

_Static_assert(RK_MATCH_PATTERN_MAX == 512, "a pattern's error states its bound");

bool rk_path_pattern_valid(const char *pattern, const char **why) {
    size_t len = strlen(pattern);
    size_t segments = 0;
    if (len == 0 || pattern[0] != '/') {
        *why = "must start with /";
        return false;
    }
    if (len > RK_MATCH_PATTERN_MAX) {
        *why = "must be at most 512 bytes";
        return false;
    }
    for (const char *p = pattern; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#') {
            *why = "must not contain spaces, control characters, ? or #";
            return false;
        }
        if (*p == '/')
            segments++;
        if (*p == '*' && (p[-1] != '/' || (p[1] != '/' && p[1] != '\0'))) {
            *why = "* must stand alone as a whole segment, as in /users/*/orders or /api/*";
            return false;
        }
    }
    if (segments > RK_MATCH_MAX_SEGMENTS) {
        *why = "has too many segments";
        return false;
    }
    char normalized[RK_MATCH_PATTERN_MAX + 1];
    if (rk_path_normalize(pattern, len, normalized, sizeof normalized) != RK_OK) {
        *why = "must not hold %00 (a NUL once decoded)";
        return false;
    }
    return true;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

rk_status_t rk_path_normalize(const char *target, size_t len, char *out, size_t cap) {
    if (len == 0 || target[0] != '/' || cap < 2)
        return RK_ERR;
    /* 1. the path alone (no query, no fragment), percent-decoded once, as
     *    nginx decodes $uri; a decoded NUL is refused */
    char decoded[RK_PATH_MAX];
    size_t d = 0;
    for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%' && i + 2 < len && hex_value(target[i + 1]) >= 0 &&
            hex_value(target[i + 2]) >= 0) {
            c = (char)(hex_value(target[i + 1]) * 16 + hex_value(target[i + 2]));
            i += 2;
        }
        if (c == '\0' || d + 1 >= sizeof decoded)
            return RK_ERR;
        decoded[d++] = c;
    }
    /* 2. segments: repeated slashes merged, "." dropped, ".." resolved */
    size_t o = 0, depth = 0;
    size_t seg_starts[RK_PATH_MAX / 2];
    for (size_t i = 0; i < d;) {
        while (i < d && decoded[i] == '/')
            i++;
        size_t start = i;
        while (i < d && decoded[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0 || (n == 1 && decoded[start] == '.'))
            continue;
        if (n == 2 && decoded[start] == '.' && decoded[start + 1] == '.') {
            if (depth > 0)
                o = seg_starts[--depth] - 1;
            continue;
        }
        if (o + 1 + n + 1 > cap || depth >= RK_ARRAY_LEN(seg_starts))
            return RK_ERR;
        out[o++] = '/';
        seg_starts[depth++] = o;
        memcpy(out + o, decoded + start, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return RK_OK;
}

rk_status_t rk_match_set_path(rk_match_t *m, const char *pattern) {
    const char *why;
    if (!rk_path_pattern_valid(pattern, &why))
        return RK_ERR;
    m->path = strdup(pattern);
    if (!m->path)
        return RK_ERR;
    m->nsegments = 0;
    m->prefix = false;
    /* split a second copy at '/': segments point into it (after path's NUL) */
    size_t len = strlen(pattern);
    char *copy = realloc(m->path, 2 * len + 2);
    if (!copy)
        return RK_ERR;
    m->path = copy;
    /* Matched as requests are: decoded once, slashes merged, dot-segments
     * resolved: "/my%20docs/x" covers the request for /my%20docs/x, and
     * "/a/./b" the one for /a/b. Never longer than the pattern. */
    char *segs = copy + len + 1;
    if (rk_path_normalize(pattern, len, segs, len + 1) != RK_OK)
        return RK_ERR;
    for (char *tok = strtok(segs, "/"); tok; tok = strtok(NULL, "/"))
        m->segments[m->nsegments++] = tok;
    if (m->nsegments > 0 && !strcmp(m->segments[m->nsegments - 1], "*")) {
        m->prefix = true;
        m->nsegments--;
    }
    return RK_OK;
}

bool rk_match_path(const rk_match_t *m, const char *path) {
    if (!m->path)
        return true;
    if (m->nsegments == 0 && !m->prefix)
        return !strcmp(path, "/");
    const char *p = path;
    for (size_t k = 0; k < m->nsegments; k++) {
        if (*p != '/')
            return false;
        p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *seg = m->segments[k];
        if (!strcmp(seg, "*")) {
            if (n == 0)
                return false;
        } else if (strlen(seg) != n || memcmp(seg, p, n) != 0) {
            return false;
        }
        p += n;
    }
    if (m->prefix)
        return *p == '\0' || *p == '/';
    return *p == '\0' || (p[0] == '/' && p[1] == '\0');
}

/* ---- hosts and headers ------------------------------------------------------ */

static char *lower_dup(const char *s) {
    char *d = strdup(s);
    if (d)
        rk_ascii_lower(d, strlen(d));
    return d;
}

rk_status_t rk_match_add_host(rk_match_t *m, const char *host) {
    char **hosts = realloc(m->hosts, (m->nhosts + 1) * sizeof *hosts);
    if (!hosts)
        return RK_ERR;
    m->hosts = hosts;
    hosts[m->nhosts] = lower_dup(host);
    if (!hosts[m->nhosts])
        return RK_ERR;
    m->nhosts++;
    return RK_OK;
}

rk_status_t rk_match_add_header(rk_match_t *m, const char *name, const char *value) {
    rk_header_eq_t *h = realloc(m->headers, (m->nheaders + 1) * sizeof *h);
    if (!h)
        return RK_ERR;
    m->headers = h;
    h[m->nheaders].name = lower_dup(name);
    h[m->nheaders].value = strdup(value);
    if (!h[m->nheaders].name || !h[m->nheaders].value) {
        free(h[m->nheaders].name);
        free(h[m->nheaders].value);
        return RK_ERR;
    }
    m->nheaders++;
    return RK_OK;
}

void rk_match_free(rk_match_t *m) {
    free(m->path);
    for (size_t i = 0; i < m->nhosts; i++)
        free(m->hosts[i]);
    free(m->hosts);
    for (size_t i = 0; i < m->nheaders; i++) {
        free(m->headers[i].name);
        free(m->headers[i].value);
    }
    free(m->headers);
    memset(m, 0, sizeof *m);
}

/* "*.example.com" covers "a.example.com" and "a.b.example.com", not "example.com". */
static bool host_matches(const char *pattern, const char *host) {
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1), hl = strlen(host);
        return hl > pl && !strcmp(host + hl - pl, pattern + 1);
    }
    return !strcmp(pattern, host);
}

bool rk_match_request(const rk_match_t *m, const rk_match_request_t *req) {
    if (m->methods && !(m->methods & req->method))
        return false;
    if (!rk_match_path(m, req->path))
        return false;
    if (m->nhosts) {
        bool any = false;
        for (size_t i = 0; i < m->nhosts && !any; i++)
            any = host_matches(m->hosts[i], req->host);
        if (!any)
            return false;
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        const char *v = req->header ? req->header(req->header_ctx, m->headers[i].name) : NULL;
        if (!v || strcmp(v, m->headers[i].value) != 0)
            return false;
    }
    return true;
}
