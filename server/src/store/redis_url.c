/*
 * redis_url.c — parsing of redis://[user:pass@]host:port[/db].
 *
 * Strict on purpose: a typo in RATEKIT_REDIS_URL must stop start-up with a
 * line that says what is wrong, not connect somewhere unexpected. The user
 * and password may be percent-encoded (a password holding '@' or ':');
 * error messages never repeat the password.
 */
#include "store.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_PORT 6379

/* Writes "redis URL: <message>" into err (errlen bytes, may be 0). */
__attribute__((format(printf, 3, 4))) static rk_status_t fail(char *err, size_t errlen,
                                                              const char *fmt, ...) {
    if (err && errlen > 0) {
        int n = snprintf(err, errlen, "redis URL: ");
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return RK_ERR;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes src[0..len) into out (cap bytes including the NUL).
 * Returns the decoded length, -1 on a bad escape or a decoded NUL, -2 when
 * it does not fit.
 */
static long percent_decode(const char *src, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* Parses decimal digits s[0..len) into *out, at most max; false otherwise. */
static bool parse_uint(const char *s, size_t len, long max, long *out) {
    if (len == 0 || len > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Host names: letters, digits, '-', '.', '_'; IPv6 (in brackets): hex, ':', '.'. */
static bool valid_host(const char *h, size_t len, bool ipv6) {
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        bool ok = ipv6 ? (isxdigit(c) || c == ':' || c == '.')
                       : (isalnum(c) || c == '-' || c == '.' || c == '_');
        if (!ok)
            return false;
    }
    return true;
}

/* Splits and decodes "user:pass" (the part before the last '@'). */
static rk_status_t parse_userinfo(const char *ui, size_t len, rk_redis_url_t *out, char *err,
                                  size_t errlen) {
    const char *colon = memchr(ui, ':', len);
    if (!colon)
        return fail(err, errlen,
                    "credentials need a ':' (redis://user:password@host or "
                    "redis://:password@host)");
    size_t ulen = (size_t)(colon - ui), plen = len - ulen - 1;
    long n = percent_decode(ui, ulen, out->user, sizeof out->user);
    if (n == -1)
        return fail(err, errlen, "bad percent-encoding in the user name");
    if (n == -2)
        return fail(err, errlen, "user name longer than %zu bytes", sizeof out->user - 1);
    n = percent_decode(colon + 1, plen, out->password, sizeof out->password);
    if (n == -1)
        return fail(err, errlen, "bad percent-encoding in the password");
    if (n == -2)
        return fail(err, errlen, "password longer than %zu bytes", sizeof out->password - 1);
    if (out->password[0] == '\0')
        return fail(err, errlen, "empty password (leave out \"user:@\" when there is none)");
    return RK_OK;
}

rk_status_t rk_redis_url_parse(const char *url, rk_redis_url_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = DEFAULT_PORT;
    if (!url || !*url)
        return fail(err, errlen, "empty (expected redis://[user:pass@]host:port[/db])");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
            return fail(err, errlen, "contains a space or a control character");
    if (strncasecmp(url, "rediss://", 9) == 0)
        return fail(err, errlen, "TLS (rediss://) is not supported; use redis://");
    if (strncasecmp(url, "redis://", 8) != 0)
        return fail(err, errlen, "must start with redis:// (got \"%.*s\")",
                    (int)strcspn(url, ":/@"), url);
    const char *rest = url + 8;

    /* The credentials end at the last '@', so a password may hold '/', '?', '@'. */
    const char *at = strrchr(rest, '@');
    const char *hostpart = rest;
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), out, err, errlen) != RK_OK)
            return RK_ERR;
        hostpart = at + 1;
    }
    if (strpbrk(hostpart, "?#"))
        return fail(err, errlen, "query parameters and fragments are not supported");

    const char *slash = strchr(hostpart, '/');
    size_t authlen = slash ? (size_t)(slash - hostpart) : strlen(hostpart);
    const char *host = hostpart, *port = NULL;
    size_t hostlen, portlen = 0;
    bool ipv6 = false;
    if (authlen > 0 && hostpart[0] == '[') {
        const char *close = memchr(hostpart, ']', authlen);
        if (!close)
            return fail(err, errlen, "IPv6 address without its closing ']'");
        ipv6 = true;
        host = hostpart + 1;
        hostlen = (size_t)(close - host);
        const char *after = close + 1;
        size_t afterlen = authlen - (size_t)(after - hostpart);
        if (afterlen > 0) {
            if (after[0] != ':')
                return fail(err, errlen, "unexpected text after the IPv6 address");
            port = after + 1;
            portlen = afterlen - 1;
        }
    } else {
        const char *colon = memchr(hostpart, ':', authlen);
        hostlen = colon ? (size_t)(colon - hostpart) : authlen;
        if (colon) {
            port = colon + 1;
            portlen = authlen - hostlen - 1;
        }
    }
    if (hostlen == 0)
        return fail(err, errlen, "no host (expected redis://host:port)");
    if (hostlen >= sizeof out->host)
        return fail(err, errlen, "host longer than %zu bytes", sizeof out->host - 1);
    if (!valid_host(host, hostlen, ipv6))
        return fail(err, errlen, "invalid host \"%.*s\"", (int)hostlen, host);
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';

    if (port) {
        long v;
        if (!parse_uint(port, portlen, 65535, &v) || v == 0)
            return fail(err, errlen, "port must be a number from 1 to 65535 (got \"%.*s\")",
                        (int)portlen, port);
        out->port = (int)v;
    }

    if (slash && slash[1] != '\0') {
        long v;
        const char *db = slash + 1;
        if (!parse_uint(db, strlen(db), 2147483647L, &v))
            return fail(err, errlen, "database must be a number (redis://host:port/0; got \"/%s\")",
                        db);
        out->db = (int)v;
    }
    return RK_OK;
}
