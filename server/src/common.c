/*
 * common.c — clocks, randomness, hex and time formatting.
 */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>

int64_t rk_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rk_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rk_timespec_in(struct timespec *ts, int clock, int64_t ms) {
    clock_gettime((clockid_t)clock, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* "00" to "99": two digits per division (an answer writes a dozen numbers). */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

/* The number of decimal digits of u. */
static size_t digit_count(uint64_t u) {
    size_t n = 1;
    while (u >= 10000) {
        u /= 10000;
        n += 4;
    }
    return n + (u >= 10) + (u >= 100) + (u >= 1000);
}

size_t rk_format_int(int64_t v, char out[RK_INT_TEXT_MAX]) {
    /* in unsigned arithmetic, so that INT64_MIN negates */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t len = (v < 0) + digit_count(u);
    char *at = out + len; /* filled from the end, in place */
    *at = '\0';
    while (u >= 100) {
        const char *pair = &digit_pairs[(u % 100) * 2];
        u /= 100;
        *--at = pair[1];
        *--at = pair[0];
    }
    if (u >= 10) {
        *--at = digit_pairs[u * 2 + 1];
        *--at = digit_pairs[u * 2];
    } else {
        *--at = (char)('0' + u);
    }
    if (v < 0)
        out[0] = '-';
    return len;
}

rk_status_t rk_random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return RK_ERR;
        }
        p += got;
        n -= (size_t)got;
    }
    return RK_OK;
}

void rk_ascii_lower(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
}

void rk_hex(const void *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

rk_status_t rk_unhex(const char *text, void *out, size_t n) {
    unsigned char *b = out;
    if (!text || strlen(text) != 2 * n)
        return RK_ERR;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = text[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return RK_ERR;
        b[i / 2] = (unsigned char)(i % 2 ? (b[i / 2] << 4) | v : v);
    }
    return RK_OK;
}

void rk_format_time(int64_t epoch_ms, char out[32]) {
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rk_format_time_ms(int64_t epoch_ms, char out[32]) {
    char when[32];
    rk_format_time(epoch_ms, when); /* "YYYY-MM-DDTHH:MM:SSZ" */
    int ms = (int)(((epoch_ms % 1000) + 1000) % 1000);
    snprintf(out, 32, "%.19s.%03dZ", when, ms);
}

rk_status_t rk_parse_time(const char *text, int64_t *epoch_ms) {
    struct tm tm = {0};
    char *end = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return RK_ERR;
    int64_t ms = 0;
    if (*end == '.') {
        int64_t scale = 100;
        for (end++; *end >= '0' && *end <= '9'; end++, scale /= 10)
            ms += (*end - '0') * scale;
    }
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return RK_ERR;
    /* timegm() moves 2027-02-29 to March 1 and a 60th second to the next
     * minute: a date that does not come back as written does not exist. */
    const struct tm asked = tm;
    time_t t = timegm(&tm);
    if (tm.tm_year != asked.tm_year || tm.tm_mon != asked.tm_mon || tm.tm_mday != asked.tm_mday ||
        tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min || tm.tm_sec != asked.tm_sec)
        return RK_ERR;
    *epoch_ms = (int64_t)t * 1000 + ms;
    return RK_OK;
}

bool rk_const_time_eq(const char *a, size_t alen, const char *b, size_t blen) {
    unsigned char diff = (unsigned char)(alen != blen);
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* The length of the well-formed UTF-8 sequence at p, or 0. */
static size_t utf8_sequence(const unsigned char *p) {
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!n)
        return 0;
    /* the second byte's range excludes overlongs, surrogates and > U+10FFFF */
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void rk_utf8_scrub(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_sequence(p);
        if (n) {
            p += n;
        } else {
            *p++ = '?';
        }
    }
}

bool rk_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = *p ? utf8_sequence(p) : 1; /* a raw NUL is JSON's to refuse */
        if (n == 0 || n > (size_t)(end - p))
            return false;
        p += n;
    }
    return true;
}

uint64_t rk_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

bool rk_json_whole(const cJSON *v, int64_t min) {
    return cJSON_IsNumber(v) && v->valuedouble >= (double)min && v->valuedouble <= 9.0e15 &&
           v->valuedouble == (double)(int64_t)v->valuedouble;
}

const char *rk_json_text(const cJSON *v, size_t max) {
    return cJSON_IsString(v) && strlen(v->valuestring) <= max ? v->valuestring : NULL;
}
