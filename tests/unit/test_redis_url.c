/*
 * test_redis_url.c — RATEKIT_REDIS_URL parsing: what is accepted, what is
 * refused, and that the refusal says why.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "store/store.h"

static rk_redis_url_t parse_ok(const char *url) {
    rk_redis_url_t u;
    char err[256] = "";
    rk_status_t st = rk_redis_url_parse(url, &u, err, sizeof err);
    cr_assert_eq(st, RK_OK, "%s refused: %s", url, err);
    return u;
}

/* Asserts the URL is refused with a message holding `expect`. */
static void parse_refused(const char *url, const char *expect) {
    rk_redis_url_t u;
    char err[256] = "";
    cr_assert_eq(rk_redis_url_parse(url, &u, err, sizeof err), RK_ERR, "%s accepted", url);
    cr_assert(strstr(err, expect) != NULL, "%s: message \"%s\" lacks \"%s\"", url, err, expect);
    cr_assert(strncmp(err, "redis URL: ", 11) == 0, "message \"%s\" does not say what it is about",
              err);
}

Test(redis_url, host_and_port_only) {
    rk_redis_url_t u = parse_ok("redis://127.0.0.1:6390");
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6390);
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "");
}

Test(redis_url, port_defaults_to_6379_and_db_is_read) {
    rk_redis_url_t u = parse_ok("redis://redis/4");
    cr_assert_str_eq(u.host, "redis");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 4);
    cr_assert_eq(parse_ok("redis://redis:6379/").db, 0);
}

Test(redis_url, password_alone_and_acl_user) {
    rk_redis_url_t u = parse_ok("redis://:s3cret@cache.internal:6380/2");
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "cache.internal");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 2);

    u = parse_ok("redis://ratekit:pw@10.0.0.5:6379");
    cr_assert_str_eq(u.user, "ratekit");
    cr_assert_str_eq(u.password, "pw");
}

Test(redis_url, password_may_hold_reserved_characters) {
    /* Percent-encoded, and raw '@' '/' ':' before the last '@'. */
    rk_redis_url_t u = parse_ok("redis://app:p%40ss%3Aw%2Fd@h:1");
    cr_assert_str_eq(u.password, "p@ss:w/d");
    u = parse_ok("redis://app:a@b/c:d@h:1/3");
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "a@b/c:d");
    cr_assert_str_eq(u.host, "h");
    cr_assert_eq(u.db, 3);
}

Test(redis_url, ipv6_in_brackets) {
    rk_redis_url_t u = parse_ok("redis://[::1]:7000/1");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 1);
    parse_refused("redis://[::1:7000", "closing ']'");
}

Test(redis_url, refuses_other_schemes) {
    parse_refused("", "empty");
    parse_refused("http://localhost:6379", "must start with redis://");
    parse_refused("localhost:6379", "must start with redis://");
    parse_refused("rediss://localhost:6379", "TLS");
}

Test(redis_url, refuses_bad_ports) {
    parse_refused("redis://localhost:", "port must be a number from 1 to 65535");
    parse_refused("redis://localhost:0", "port");
    parse_refused("redis://localhost:65536", "port");
    parse_refused("redis://localhost:63x9", "port");
}

Test(redis_url, refuses_bad_hosts_and_databases) {
    parse_refused("redis://:6379", "no host");
    parse_refused("redis://", "no host");
    parse_refused("redis://bad$host:6379", "invalid host");
    parse_refused("redis://localhost:6379/zero", "database must be a number");
    parse_refused("redis://localhost:6379/-1", "database must be a number");
    parse_refused("redis://localhost:6379/0?timeout=1", "query parameters");
    parse_refused("redis://local host:6379", "space");
}

Test(redis_url, refuses_unclear_credentials_without_echoing_the_password) {
    parse_refused("redis://justapassword@localhost:6379", "credentials need a ':'");
    parse_refused("redis://user:@localhost:6379", "empty password");
    parse_refused("redis://u:bad%zzpw@localhost:6379", "percent-encoding in the password");

    rk_redis_url_t u;
    char err[256];
    rk_redis_url_parse("redis://u:topsecret@bad$host:1", &u, err, sizeof err);
    cr_assert(strstr(err, "topsecret") == NULL, "the password leaked into \"%s\"", err);
}
