/*
 * test_list_value.c — what a safelist, denylist or ban value is: an address
 * or CIDR, a client key as ratekit reports it, or neither; a value that
 * looks like an address but is not one is never taken for a key.
 * Table-driven.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "lists/list_value.h"

typedef struct {
    const char *value;
    rk_list_value_kind_t kind;
} value_case_t;

static const value_case_t cases[] = {
    /* addresses and CIDRs */
    {"203.0.113.7", RK_LIST_VALUE_CIDR},
    {"10.0.0.0/8", RK_LIST_VALUE_CIDR},
    {"10.0.0.0/0", RK_LIST_VALUE_CIDR},
    {"10.0.0.1/32", RK_LIST_VALUE_CIDR},
    {"2001:db8::/32", RK_LIST_VALUE_CIDR},
    {"2001:DB8::1", RK_LIST_VALUE_CIDR},
    {"::1/128", RK_LIST_VALUE_CIDR},
    {"::", RK_LIST_VALUE_CIDR},
    {"::ffff:192.0.2.1", RK_LIST_VALUE_CIDR},
    {"::ffff:192.0.2.0/120", RK_LIST_VALUE_CIDR}, /* 192.0.2.0/24, written as IPv6 */
    /* look like addresses, are not */
    {"10.0.0.0/33", RK_LIST_VALUE_BAD_ADDRESS},
    {"300.1.1.1", RK_LIST_VALUE_BAD_ADDRESS},
    {"1.2.3", RK_LIST_VALUE_BAD_ADDRESS},
    {"1.2.3.4.5", RK_LIST_VALUE_BAD_ADDRESS},
    {"010.0.0.1", RK_LIST_VALUE_BAD_ADDRESS},
    {"2001:db8::/129", RK_LIST_VALUE_BAD_ADDRESS},
    {"2001:db8:::1", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/8/8", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/-1", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/+8", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/0008", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/x", RK_LIST_VALUE_BAD_ADDRESS},
    {"10.0.0.0/ 8", RK_LIST_VALUE_BAD_ADDRESS},
    {"1.2.3.4:80", RK_LIST_VALUE_BAD_ADDRESS},
    {"[2001:db8::1]", RK_LIST_VALUE_BAD_ADDRESS},
    {"[2001:db8::1]:443", RK_LIST_VALUE_BAD_ADDRESS},
    {"::ffff:192.0.2.1/129", RK_LIST_VALUE_BAD_ADDRESS}, /* a mapped prefix counts IPv6 bits */
    {"abc:def", RK_LIST_VALUE_BAD_ADDRESS},
    /* white space around */
    {"1.2.3.4 ", RK_LIST_VALUE_SPACES},
    {" 1.2.3.4", RK_LIST_VALUE_SPACES},
    {"user:42\n", RK_LIST_VALUE_SPACES},
    {"\tuser:42", RK_LIST_VALUE_SPACES},
    /* keys as ratekit reports them, and direct checks' keys */
    {"user:42", RK_LIST_VALUE_KEY},
    {"user:beef", RK_LIST_VALUE_KEY},
    {"ip:203.0.113.7", RK_LIST_VALUE_KEY},
    {"ip:2001:db8::1", RK_LIST_VALUE_KEY},
    {"api_key:3f2a9c", RK_LIST_VALUE_KEY},
    {"header:X-Tenant:acme", RK_LIST_VALUE_KEY},
    {"jwt:sub:alice", RK_LIST_VALUE_KEY},
    {"route:GET:/api/*", RK_LIST_VALUE_KEY},
    {"global", RK_LIST_VALUE_KEY},
    {"42", RK_LIST_VALUE_KEY},
    {"/8", RK_LIST_VALUE_KEY},
    /* neither */
    {"", RK_LIST_VALUE_BAD_KEY},
    {"has space", RK_LIST_VALUE_BAD_KEY},
    {"caf\xc3\xa9", RK_LIST_VALUE_BAD_KEY},
    {"del\x7f", RK_LIST_VALUE_BAD_KEY},
};

Test(list_value, each_value_is_an_address_a_key_or_refused_with_its_reason) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(rk_list_value_kind(cases[i].value), cases[i].kind, "\"%s\": %d, not %d",
                     cases[i].value, rk_list_value_kind(cases[i].value), cases[i].kind);
}

Test(list_value, null_and_over_long_values_are_refused) {
    char value[RK_LIST_VALUE_MAX + 2];
    memset(value, 'k', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    cr_expect_eq(rk_list_value_kind(NULL), RK_LIST_VALUE_BAD_KEY);
    cr_expect_eq(rk_list_value_kind(value), RK_LIST_VALUE_BAD_KEY);
    value[RK_LIST_VALUE_MAX] = '\0';
    cr_expect_eq(rk_list_value_kind(value), RK_LIST_VALUE_KEY);
}
