/*
 * client_ip.h — who the client is: IP addresses, CIDR lists, and the walk
 * of X-Forwarded-For / Forwarded that believes only trusted proxies.
 */
#ifndef RK_CLIENT_IP_H
#define RK_CLIENT_IP_H

#include "../common.h"

typedef struct {
    uint8_t b[16]; /* IPv4 as ::ffff:a.b.c.d */
    bool v4;
} rk_ip_t;

typedef struct {
    rk_ip_t ip;
    unsigned bits; /* prefix length over the 128-bit form */
} rk_cidr_t;

typedef struct {
    rk_cidr_t *items;
    size_t n;
} rk_cidr_list_t;

/* Parses "203.0.113.7", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443",
 * "203.0.113.7:443" (len bytes, no NUL needed). */
rk_status_t rk_ip_parse(const char *text, size_t len, rk_ip_t *out);
/* "10.0.0.0/8", "2001:db8::/32" or a single address. */
rk_status_t rk_cidr_parse(const char *text, rk_cidr_t *out);
/* A comma-separated list; on error, err names the bad entry. Free with rk_cidr_list_free. */
rk_status_t rk_cidr_list_parse(const char *csv, rk_cidr_list_t *out, char *err, size_t errlen);
void rk_cidr_list_free(rk_cidr_list_t *list);
bool rk_cidr_contains(const rk_cidr_t *cidr, const rk_ip_t *ip);
bool rk_cidr_list_contains(const rk_cidr_list_t *list, const rk_ip_t *ip);

/*
 * The client's address: the peer itself unless the peer is a trusted
 * proxy; then X-Forwarded-For walked from the right, skipping trusted
 * proxies; RFC 7239 Forwarded only when there is no X-Forwarded-For, and
 * X-Real-IP only when there is neither. X-Forwarded-For wins because every
 * common proxy writes it, and a proxy that writes one passes the client's
 * other headers on: a client's own Forwarded must not outrank it. Any
 * header may be NULL; a header sent on several lines is passed joined with
 * commas, in order. An unparseable hop ends the walk at the last address
 * that could be believed.
 */
rk_ip_t rk_client_ip(const rk_ip_t *peer, const char *xff, const char *forwarded,
                     const char *x_real_ip, const rk_cidr_list_t *trusted);

/* The key text of an address: IPv4 as is; IPv6 masked to v6_prefix bits,
 * as "2001:db8:1:2::/64" (one subscriber owns a whole /64). */
void rk_ip_key(const rk_ip_t *ip, unsigned v6_prefix, char *out, size_t cap);

#endif
