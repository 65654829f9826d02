/*
 * list_value.c — see list_value.h.
 */
#include "list_value.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "../check/client_ip.h"

/* Whether each of the n bytes of s is one of set. */
static bool only_of(const char *s, size_t n, const char *set) {
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

/*
 * Whether the part before the first '/' reads as an address: digits and
 * dots with a dot (IPv4), or hex digits, colons, dots and brackets with a
 * colon (IPv6). Keys as ratekit writes them ("ip:...", "user:...") have a
 * letter past 'f' before their colon, so they never do.
 */
static bool looks_like_address(const char *value) {
    size_t n = strcspn(value, "/");
    if (n == 0)
        return false;
    if (memchr(value, '.', n) && only_of(value, n, "0123456789."))
        return true;
    return memchr(value, ':', n) && only_of(value, n, "0123456789abcdefABCDEF:.[]");
}

/*
 * Whether value is exactly "<address>" or "<address>/<prefix>": no brackets,
 * port or spaces (which rk_ip_parse forgives in a header), a prefix of 1 to
 * 3 digits within the address's family (/32 for IPv4, /128 for IPv6).
 */
static bool strict_cidr(const char *value) {
    char addr[INET6_ADDRSTRLEN];
    unsigned char bytes[16];
    size_t n = strcspn(value, "/");
    if (n >= sizeof addr)
        return false;
    memcpy(addr, value, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, bytes) != 1 && inet_pton(AF_INET6, addr, bytes) != 1)
        return false;
    if (value[n] == '/') {
        size_t digits = strspn(value + n + 1, "0123456789");
        if (digits == 0 || digits > 3 || value[n + 1 + digits])
            return false;
    }
    rk_cidr_t cidr;
    return rk_cidr_parse(value, &cidr) == RK_OK; /* bounds the prefix, as the lists will read it */
}

/* Spaces and control characters. */
static bool is_blank(char c) {
    return (unsigned char)c <= ' ';
}

/* Printable ASCII other than a space. */
static bool is_visible(char c) {
    return (unsigned char)c > ' ' && (unsigned char)c <= '~';
}

rk_list_value_kind_t rk_list_value_kind(const char *value) {
    size_t n = value ? strlen(value) : 0;
    if (n == 0 || n > RK_LIST_VALUE_MAX)
        return RK_LIST_VALUE_BAD_KEY;
    if (is_blank(value[0]) || is_blank(value[n - 1]))
        return RK_LIST_VALUE_SPACES;
    if (looks_like_address(value))
        return strict_cidr(value) ? RK_LIST_VALUE_CIDR : RK_LIST_VALUE_BAD_ADDRESS;
    for (const char *p = value; *p; p++)
        if (!is_visible(*p))
            return RK_LIST_VALUE_BAD_KEY;
    return RK_LIST_VALUE_KEY;
}
