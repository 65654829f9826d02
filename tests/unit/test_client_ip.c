/*
 * test_client_ip.c — who the client is, and why a spoofed
 * X-Forwarded-For from an untrusted peer buys nothing.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "check/client_ip.h"

static rk_ip_t ip(const char *text) {
    rk_ip_t out;
    cr_assert_eq(rk_ip_parse(text, strlen(text), &out), RK_OK, "%s", text);
    return out;
}

static void key_of(rk_ip_t a, char *out) {
    rk_ip_key(&a, 64, out, 64);
}

static rk_cidr_list_t trusted(const char *csv) {
    rk_cidr_list_t l;
    char err[128];
    cr_assert_eq(rk_cidr_list_parse(csv, &l, err, sizeof err), RK_OK, "%s", err);
    return l;
}

typedef struct {
    const char *peer, *xff, *fwd, *real;
    const char *client;
} walk_case_t;

static const walk_case_t walk_cases[] = {
    /* untrusted peers are believed about nothing */
    {"203.0.113.9", "1.2.3.4", NULL, NULL, "203.0.113.9"},
    {"203.0.113.9", NULL, "for=1.2.3.4", NULL, "203.0.113.9"},
    {"203.0.113.9", NULL, NULL, "1.2.3.4", "203.0.113.9"},
    /* a trusted proxy: the rightmost untrusted hop */
    {"127.0.0.1", "198.51.100.7", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", "6.6.6.6, 198.51.100.7", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", "10.0.0.3, 10.0.0.2", NULL, NULL, "10.0.0.3"},
    {"127.0.0.1", "garbage, 198.51.100.7", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", "198.51.100.7, garbage", NULL, NULL, "127.0.0.1"},
    {"127.0.0.1", "198.51.100.7, 10.0.0.2, garbage", NULL, NULL, "127.0.0.1"},
    {"127.0.0.1", "10.0.0.2, garbage, 10.0.0.3", NULL, NULL, "10.0.0.3"},
    {"127.0.0.1", "", NULL, "198.51.100.8", "198.51.100.8"},
    {"127.0.0.1", NULL, NULL, "198.51.100.8", "198.51.100.8"},
    {"127.0.0.1", NULL, NULL, "not-an-ip", "127.0.0.1"},
    {"127.0.0.1", NULL, NULL, NULL, "127.0.0.1"},
    {"127.0.0.1", "198.51.100.7:5555", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", "[2001:db8::1]:443", NULL, NULL, "2001:db8::/64"},
    {"127.0.0.1", "2001:db8:0:0:1::5", NULL, NULL, "2001:db8::/64"},
    {"127.0.0.1", "198.51.100.7,", NULL, NULL, "198.51.100.7"},
    {"127.0.0.1", ",", NULL, NULL, "127.0.0.1"},
    /* X-Forwarded-For wins: a proxy that writes it passes the client's own
     * Forwarded on (nginx, Caddy), and that must buy nothing */
    {"127.0.0.1", "198.51.100.7", "for=6.6.6.6", NULL, "198.51.100.7"},
    {"127.0.0.1", "198.51.100.7", NULL, "6.6.6.6", "198.51.100.7"},
    /* Forwarded when there is no X-Forwarded-For */
    {"127.0.0.1", "", "for=198.51.100.9", NULL, "198.51.100.9"},
    {"127.0.0.1", NULL, "for=\"[2001:db8:cafe::17]:4711\"", NULL, "2001:db8:cafe::/64"},
    {"127.0.0.1", NULL, "for=192.0.2.43, for=198.51.100.17;proto=https", NULL, "198.51.100.17"},
    {"127.0.0.1", NULL, "for=192.0.2.43;by=10.0.0.1, for=10.0.0.2", NULL, "192.0.2.43"},
    {"127.0.0.1", NULL, "For=192.0.2.60;proto=http;by=203.0.113.43", NULL, "192.0.2.60"},
    {"127.0.0.1", NULL, "for=_hidden, for=198.51.100.17", NULL, "198.51.100.17"},
    {"127.0.0.1", NULL, "for=198.51.100.17, for=_hidden", NULL, "127.0.0.1"},
    {"127.0.0.1", NULL, "proto=https", NULL, "127.0.0.1"},
    /* IPv6 peers */
    {"::1", "198.51.100.7", NULL, NULL, "198.51.100.7"},
    {"2001:db8::9", "198.51.100.7", NULL, NULL, "2001:db8::/64"},
};

Test(client_ip, walks_forwarded_chains_from_the_right_trusting_only_proxies) {
    rk_cidr_list_t t = trusted("127.0.0.0/8, ::1/128, 10.0.0.0/8");
    for (size_t i = 0; i < sizeof walk_cases / sizeof walk_cases[0]; i++) {
        const walk_case_t *c = &walk_cases[i];
        rk_ip_t peer = ip(c->peer);
        rk_ip_t got = rk_client_ip(&peer, c->xff, c->fwd, c->real, &t);
        char key[64];
        key_of(got, key);
        cr_expect_str_eq(key, c->client, "case %zu: peer %s xff %s fwd %s real %s", i, c->peer,
                         c->xff ? c->xff : "-", c->fwd ? c->fwd : "-", c->real ? c->real : "-");
    }
    rk_cidr_list_free(&t);
}

/* The client key behind a trusted proxy (127.0.0.1, with 10/8 trusted)
 * whose X-Forwarded-For is hop repeated n times, then tail. */
static void client_behind_chain(const char *hop, int n, const char *tail, char key[64]) {
    static char chain[20000];
    chain[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(chain, hop);
    strcat(chain, tail);
    rk_cidr_list_t t = trusted("127.0.0.0/8,10.0.0.0/8");
    rk_ip_t peer = ip("127.0.0.1");
    key_of(rk_client_ip(&peer, chain, NULL, NULL, &t), key);
    rk_cidr_list_free(&t);
}

Test(client_ip, a_long_forged_chain_is_bounded) {
    char key[64];
    client_behind_chain("10.0.0.1, ", 1000, "10.0.0.2", key);
    cr_assert(!strncmp(key, "10.0.0.", 7));
}

/* Hops a client writes come first; those past any bound must not push the
 * proxies' own out of the walk. */
Test(client_ip, forged_hops_on_the_left_never_hide_the_right) {
    char key[64];
    client_behind_chain("6.6.6.6, ", 100, "198.51.100.7, 10.0.0.2", key);
    cr_assert_str_eq(key, "198.51.100.7");
}

Test(client_ip, cidrs_contain_what_they_should) {
    rk_cidr_t c;
    cr_assert_eq(rk_cidr_parse("10.0.0.0/8", &c), RK_OK);
    rk_ip_t a = ip("10.255.1.2"), b = ip("11.0.0.1"), v6 = ip("::ffff:10.0.0.1");
    cr_assert(rk_cidr_contains(&c, &a));
    cr_assert_not(rk_cidr_contains(&c, &b));
    cr_assert(rk_cidr_contains(&c, &v6));
    cr_assert_eq(rk_cidr_parse("2001:db8::/32", &c), RK_OK);
    rk_ip_t in = ip("2001:db8:ffff::1"), out = ip("2001:db9::1");
    cr_assert(rk_cidr_contains(&c, &in));
    cr_assert_not(rk_cidr_contains(&c, &out));
    cr_assert_eq(rk_cidr_parse("192.168.1.7/31", &c), RK_OK);
    rk_ip_t six = ip("192.168.1.6"), eight = ip("192.168.1.8");
    cr_assert(rk_cidr_contains(&c, &six));
    cr_assert_not(rk_cidr_contains(&c, &eight));
    cr_assert_eq(rk_cidr_parse("0.0.0.0/0", &c), RK_OK);
    cr_assert(rk_cidr_contains(&c, &b));
    cr_assert_not(rk_cidr_contains(&c, &in));
}

/* A mapped address's prefix counts in IPv6 bits, as it is written. */
Test(client_ip, a_mapped_ipv4_cidr_counts_its_prefix_in_ipv6_bits) {
    rk_cidr_t c;
    cr_assert_eq(rk_cidr_parse("::ffff:10.8.0.0/112", &c), RK_OK);
    rk_ip_t in = ip("10.8.200.1"), out = ip("10.9.0.1");
    cr_assert(rk_cidr_contains(&c, &in));
    cr_assert_not(rk_cidr_contains(&c, &out));
    cr_assert_eq(rk_cidr_parse("::ffff:0.0.0.0/96", &c), RK_OK);
    cr_assert(rk_cidr_contains(&c, &out));
    /* /16 of the IPv6 form is ::/16, not 10.8.0.0/16 */
    cr_assert_eq(rk_cidr_parse("::ffff:10.8.0.0/16", &c), RK_OK);
    cr_assert_not(rk_cidr_contains(&c, &in));
    rk_ip_t v6 = ip("::1");
    cr_assert(rk_cidr_contains(&c, &v6));
    cr_assert_eq(rk_cidr_parse("::ffff:10.8.0.1", &c), RK_OK); /* one address */
    rk_ip_t one = ip("10.8.0.1"), next = ip("10.8.0.2");
    cr_assert(rk_cidr_contains(&c, &one));
    cr_assert_not(rk_cidr_contains(&c, &next));
    cr_assert_eq(rk_cidr_parse("::ffff:10.8.0.0/129", &c), RK_ERR);
}

Test(client_ip, bad_addresses_and_cidrs_are_refused) {
    const char *bad[] = {"",        "1.2.3",      "1.2.3.4.5", "256.1.1.1", "abc", "1.2.3.4/33",
                         "::1/129", "1.2.3.4/-1", "1.2.3.4/",  "[::1",      "::1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rk_cidr_t c;
        cr_expect_eq(rk_cidr_parse(bad[i], &c), RK_ERR, "%s", bad[i]);
    }
    rk_cidr_list_t l;
    char err[128];
    cr_assert_eq(rk_cidr_list_parse("127.0.0.0/8,nonsense", &l, err, sizeof err), RK_ERR);
    cr_assert(strstr(err, "nonsense"));
}

Test(client_ip, ipv6_clients_are_keyed_by_their_prefix) {
    rk_ip_t a = ip("2001:db8:1:2:aaaa::1"), b = ip("2001:db8:1:2:bbbb::9");
    char ka[64], kb[64];
    rk_ip_key(&a, 64, ka, sizeof ka);
    rk_ip_key(&b, 64, kb, sizeof kb);
    cr_assert_str_eq(ka, kb);
    cr_assert_str_eq(ka, "2001:db8:1:2::/64");
    rk_ip_key(&a, 128, ka, sizeof ka);
    cr_assert_str_eq(ka, "2001:db8:1:2:aaaa::1");
    rk_ip_t v4 = ip("198.51.100.7");
    rk_ip_key(&v4, 64, ka, sizeof ka);
    cr_assert_str_eq(ka, "198.51.100.7");
}
