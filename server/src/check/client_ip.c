/*
 * client_ip.c — see client_ip.h.
 */
#include "client_ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

rk_status_t rk_ip_parse(const char *text, size_t len, rk_ip_t *out) {
    char buf[64];
    while (len && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof buf)
        return RK_ERR;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *host = buf;
    if (host[0] == '[') { /* [v6] or [v6]:port */
        char *close = strchr(host, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return RK_ERR;
        *close = '\0';
        host++;
    } else {
        char *colon = strchr(host, ':');
        if (colon && !strchr(colon + 1, ':')) /* v4:port, not a v6 address */
            *colon = '\0';
    }
    memset(out, 0, sizeof *out);
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        out->v4 = true;
        out->b[10] = out->b[11] = 0xff;
        memcpy(out->b + 12, &v4, 4);
        return RK_OK;
    }
    if (inet_pton(AF_INET6, host, out->b) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        out->v4 = memcmp(out->b, mapped, 12) == 0;
        return RK_OK;
    }
    return RK_ERR;
}

rk_status_t rk_cidr_parse(const char *text, rk_cidr_t *out) {
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    if (rk_ip_parse(text, len, &out->ip) != RK_OK)
        return RK_ERR;
    /* The prefix counts in the form the address is written in: a mapped
     * ::ffff:a.b.c.d/112 is an IPv6 prefix (its last 16 bits free), as
     * 10.8.0.0/16 is an IPv4 one. (A port, 203.0.113.7:443, has one colon.) */
    size_t colons = 0;
    for (size_t i = 0; i < len; i++)
        colons += text[i] == ':';
    bool written_v6 = colons >= 2;
    unsigned max = written_v6 ? 128 : 32;
    unsigned bits = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || v < 0 || v > (long)max)
            return RK_ERR;
        bits = (unsigned)v;
    }
    out->bits = written_v6 ? bits : bits + 96;
    /* A prefix shorter than ::ffff:0:0/96 reaches past the mapped addresses:
     * it is an IPv6 one, which IPv4 clients are not. */
    if (out->ip.v4 && out->bits < 96)
        out->ip.v4 = false;
    return RK_OK;
}

rk_status_t rk_cidr_list_parse(const char *csv, rk_cidr_list_t *out, char *err, size_t errlen) {
    out->items = NULL;
    out->n = 0;
    const char *p = csv;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[80];
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len > 0) {
            rk_cidr_t c;
            bool ok = len < sizeof entry;
            if (ok) {
                memcpy(entry, p, len);
                entry[len] = '\0';
                ok = rk_cidr_parse(entry, &c) == RK_OK;
            }
            rk_cidr_t *grown = ok ? realloc(out->items, (out->n + 1) * sizeof *grown) : NULL;
            if (!grown) {
                snprintf(err, errlen, "\"%.*s\" is not an address or CIDR",
                         (int)(len > 60 ? 60 : len), p);
                rk_cidr_list_free(out);
                return RK_ERR;
            }
            out->items = grown;
            out->items[out->n++] = c;
        }
        p += comma ? (size_t)(comma - p) + 1 : strlen(p);
    }
    return RK_OK;
}

void rk_cidr_list_free(rk_cidr_list_t *list) {
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

bool rk_cidr_contains(const rk_cidr_t *cidr, const rk_ip_t *ip) {
    if (cidr->ip.v4 != ip->v4)
        return false;
    unsigned full = cidr->bits / 8, rest = cidr->bits % 8;
    if (memcmp(cidr->ip.b, ip->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (cidr->ip.b[full] & mask) == (ip->b[full] & mask);
}

bool rk_cidr_list_contains(const rk_cidr_list_t *list, const rk_ip_t *ip) {
    for (size_t i = 0; i < list->n; i++)
        if (rk_cidr_contains(&list->items[i], ip))
            return true;
    return false;
}

/*
 * The address of one element of a chain (len bytes at p): the element
 * itself, or for Forwarded its for= parameter (quoted or not). An element
 * without for=, or with an obfuscated identifier, has no address.
 */
static bool hop_address(const char *p, size_t len, bool forwarded, rk_ip_t *out) {
    const char *addr = p;
    size_t alen = len;
    if (forwarded) {
        alen = 0;
        for (size_t i = 0; i + 4 <= len; i++) {
            if ((i == 0 || p[i - 1] == ';' || p[i - 1] == ' ') && !strncasecmp(p + i, "for=", 4)) {
                addr = p + i + 4;
                const char *stop = addr;
                while (stop < p + len && *stop != ';')
                    stop++;
                alen = (size_t)(stop - addr);
                if (alen >= 2 && addr[0] == '"' && addr[alen - 1] == '"') {
                    addr++;
                    alen -= 2;
                }
                break;
            }
        }
    }
    return alen > 0 && rk_ip_parse(addr, alen, out) == RK_OK;
}

rk_ip_t rk_client_ip(const rk_ip_t *peer, const char *xff, const char *forwarded,
                     const char *x_real_ip, const rk_cidr_list_t *trusted) {
    if (!rk_cidr_list_contains(trusted, peer))
        return *peer;
    bool is_forwarded = !xff || !*xff;
    const char *chain = is_forwarded ? forwarded : xff;
    if (!chain || !*chain) {
        rk_ip_t real;
        if (x_real_ip && rk_ip_parse(x_real_ip, strlen(x_real_ip), &real) == RK_OK)
            return real;
        return *peer;
    }
    /* From the right, element by element, however long the chain: what a
     * client wrote is on the left, what the proxies added on the right. */
    const char *end = chain + strlen(chain);
    if (end[-1] == ',')
        end--; /* "a, b," ends with b */
    rk_ip_t client = *peer;
    for (;;) {
        const char *start = end;
        while (start > chain && start[-1] != ',')
            start--;
        rk_ip_t hop;
        if (!hop_address(start, (size_t)(end - start), is_forwarded, &hop))
            return client; /* cannot see past a hop that is not an address */
        client = hop;
        if (!rk_cidr_list_contains(trusted, &hop) || start == chain)
            return client;
        end = start - 1;
    }
}

void rk_ip_key(const rk_ip_t *ip, unsigned v6_prefix, char *out, size_t cap) {
    if (ip->v4) {
        inet_ntop(AF_INET, ip->b + 12, out, (socklen_t)cap);
        return;
    }
    uint8_t masked[16] = {0};
    unsigned full = v6_prefix / 8, rest = v6_prefix % 8;
    memcpy(masked, ip->b, full > 16 ? 16 : full);
    if (rest && full < 16)
        masked[full] = (uint8_t)(ip->b[full] & (0xff << (8 - rest)));
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, masked, text, sizeof text);
    if (v6_prefix >= 128)
        snprintf(out, cap, "%s", text);
    else
        snprintf(out, cap, "%s/%u", text, v6_prefix);
}
