/*
 * request.c — request texts. The key is drawn per request, so the text is
 * formatted per request (about 100 ns): small beside a loopback round trip.
 */
#include "request.h"

#include <stdio.h>
#include <string.h>

/* The client address of key index n: 10.0.0.1 upwards, distinct for n below
 * LT_MAX_ADDRESS_KEYS (options.c refuses more keys). */
static void key_ip(long n, char out[20]) {
    unsigned long v = (unsigned long)n + 1;
    snprintf(out, 20, "10.%lu.%lu.%lu", (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

/* Appends "POST <path>" with the JSON body; returns the total length. */
static size_t post_json(const lt_url_t *url, const char *def_path, const char *body,
                        size_t body_len, char *out) {
    int n = snprintf(out, LT_REQUEST_MAX,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     url->path[0] ? url->path : def_path, url->hostport, body_len);
    if (n < 0 || (size_t)n + body_len >= LT_REQUEST_MAX)
        return 0;
    memcpy(out + n, body, body_len);
    return (size_t)n + body_len;
}

/* The body of a direct check (or acquire): the rule and the fixed or drawn key. */
static int direct_body(const lt_options_t *o, long key, char *body, size_t size) {
    if (o->key[0])
        return snprintf(body, size, "{\"rule\":\"%s\",\"key\":\"%s\"}", o->rule, o->key);
    return snprintf(body, size, "{\"rule\":\"%s\",\"key\":\"k%ld\"}", o->rule, key);
}

size_t lt_request_build(const lt_options_t *o, const lt_url_t *url, long key, const char *lease,
                        char *out) {
    char body[LT_REQUEST_MAX / 2];
    char ip[20];
    int n = 0;
    const char *path = "/v1/check";
    switch (o->target) {
    case LT_TARGET_LEASE:
        if (lease && lease[0]) {
            n = snprintf(body, sizeof body, "{\"lease\":\"%s\"}", lease);
            path = "/v1/release";
            break;
        }
        path = "/v1/acquire";
        n = direct_body(o, key, body, sizeof body);
        break;
    case LT_TARGET_CHECK:
        n = direct_body(o, key, body, sizeof body);
        break;
    case LT_TARGET_CONTEXT:
        key_ip(key, ip);
        n = snprintf(body, sizeof body,
                     "{\"request\":{\"method\":\"GET\",\"path\":\"%s\",\"host\":\"bench.local\","
                     "\"ip\":\"%s\",\"headers\":{}}}",
                     o->request_path, ip);
        break;
    case LT_TARGET_AUTH:
        key_ip(key, ip);
        n = snprintf(out, LT_REQUEST_MAX,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nX-Original-Method: GET\r\n"
                     "X-Original-URI: %s\r\nX-Forwarded-For: %s\r\n\r\n",
                     url->path[0] ? url->path : "/v1/auth", url->hostport, o->request_path, ip);
        return n > 0 && n < LT_REQUEST_MAX ? (size_t)n : 0;
    case LT_TARGET_GET:
        n = snprintf(out, LT_REQUEST_MAX, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                     url->path[0] ? url->path : "/", url->hostport);
        return n > 0 && n < LT_REQUEST_MAX ? (size_t)n : 0;
    }
    if (n <= 0 || (size_t)n >= sizeof body)
        return 0;
    return post_json(url, path, body, (size_t)n, out);
}
