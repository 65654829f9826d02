/*
 * list_value.h — what a safelist, denylist or ban value is: an address or
 * CIDR (kind "cidr"), a client key as ratekit reports it ("user:42",
 * "ip:203.0.113.7", a direct check's key; kind "key"), or neither.
 *
 * A value that looks like an address ("10.0.0.0/33", "300.1.1.1",
 * "2001:db8::/129", "1.2.3.4:80") but is not one is refused rather than
 * kept as a key: as a key it would never match a client, and a typo'd
 * denylist CIDR would block nobody. Pure; no allocation.
 */
#ifndef RK_LIST_VALUE_H
#define RK_LIST_VALUE_H

#define RK_LIST_VALUE_MAX 200 /* bytes of a value */

typedef enum {
    RK_LIST_VALUE_CIDR = 0,    /* an address or CIDR, as rk_cidr_parse reads it */
    RK_LIST_VALUE_KEY,         /* a client key: printable ASCII, no spaces */
    RK_LIST_VALUE_BAD_ADDRESS, /* looks like an address or CIDR, but is not one */
    RK_LIST_VALUE_SPACES,      /* begins or ends with white space */
    RK_LIST_VALUE_BAD_KEY      /* NULL, empty, too long, or not printable */
} rk_list_value_kind_t;

rk_list_value_kind_t rk_list_value_kind(const char *value);

#endif
