/*
 * test_match.c — which requests a rule's match covers: path patterns,
 * path normalisation, methods, hosts, headers. Table-driven.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "check/match.h"

typedef struct {
    const char *pattern;
    const char *path;
    bool covered;
} path_case_t;

static const path_case_t path_cases[] = {
    /* exact */
    {"/login", "/login", true},
    {"/login", "/login/", true},
    {"/login", "/logins", false},
    {"/login", "/login/x", false},
    {"/login", "/", false},
    {"/login", "/LOGIN", false},
    {"/", "/", true},
    {"/", "/a", false},
    {"/a/b/c", "/a/b/c", true},
    {"/a/b/c", "/a/b", false},
    {"/a/b/c", "/a/b/c/d", false},
    {"/a/b", "/a/bc", false},
    {"/v1/check", "/v1/check", true},
    {"/v1/check", "/v1/checks", false},
    /* prefix glob */
    {"/api/*", "/api", true},
    {"/api/*", "/api/", true},
    {"/api/*", "/api/items", true},
    {"/api/*", "/api/items/7/parts", true},
    {"/api/*", "/apix", false},
    {"/api/*", "/apix/items", false},
    {"/api/*", "/ap", false},
    {"/api/*", "/", false},
    {"/api/*", "/v2/api/items", false},
    {"/*", "/", true},
    {"/*", "/anything/at/all", true},
    {"/api/v1/*", "/api/v1/users", true},
    {"/api/v1/*", "/api/v2/users", false},
    {"/api/v1/*", "/api/v1", true},
    /* segment wildcards */
    {"/users/*/orders", "/users/42/orders", true},
    {"/users/*/orders", "/users/abc-def/orders", true},
    {"/users/*/orders", "/users/42/orders/", true},
    {"/users/*/orders", "/users//orders", false},
    {"/users/*/orders", "/users/42/43/orders", false},
    {"/users/*/orders", "/users/42/orders/7", false},
    {"/users/*/orders", "/users/orders", false},
    {"/users/*/orders", "/users/42/order", false},
    {"/users/*/orders/*", "/users/42/orders/7", true},
    {"/users/*/orders/*", "/users/42/orders", true},
    {"/users/*/orders/*", "/users/42/items/7", false},
    {"/*/health", "/svc/health", true},
    {"/*/health", "/health", false},
    {"/*/health", "/a/b/health", false},
    {"/*/*", "/a/b", true},
    {"/*/*", "/a", true},
    {"/*/*/x", "/a/b/x", true},
    {"/*/*/x", "/a/x", false},
    /* patterns are read as requests are: decoded once, dot-segments resolved */
    {"/my%20docs/*", "/my%20docs/a", true},
    {"/my%20docs/*", "/my%2520docs/a", false},
    {"/%7euser", "/~user", true},
    {"/a/./b", "/a/b", true},
    {"/a//b", "/a/b", true},
    {"/../x", "/x", true},
};

Test(match, path_patterns_cover_exactly_what_they_say) {
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const path_case_t *c = &path_cases[i];
        rk_match_t m = {0};
        cr_assert_eq(rk_match_set_path(&m, c->pattern), RK_OK, "pattern %s", c->pattern);
        char norm[RK_PATH_MAX];
        cr_assert_eq(rk_path_normalize(c->path, strlen(c->path), norm, sizeof norm), RK_OK);
        cr_expect_eq(rk_match_path(&m, norm), c->covered, "%s vs %s (normalised %s): want %d",
                     c->pattern, c->path, norm, c->covered);
        rk_match_free(&m);
    }
}

Test(match, no_path_covers_every_path) {
    rk_match_t m = {0};
    cr_assert(rk_match_path(&m, "/"));
    cr_assert(rk_match_path(&m, "/x/y"));
}

typedef struct {
    const char *in;
    const char *out; /* NULL: refused */
} norm_case_t;

static const norm_case_t norm_cases[] = {
    {"/", "/"},
    {"/a", "/a"},
    {"/a/", "/a"},
    {"//a///b", "/a/b"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/a/b/../../c", "/c"},
    {"/../../etc/passwd", "/etc/passwd"},
    {"/%6cogin", "/login"},
    {"/%6Cogin", "/login"},
    {"/a%2fb", "/a/b"},
    {"/a%2Fb/..", "/a"},
    {"/login?next=/admin", "/login"},
    {"/login#frag", "/login"},
    {"/a/%2e%2e/b", "/b"},
    {"/a/%2E/b", "/a/b"},
    {"/%zz", "/%zz"},
    {"/%4", "/%4"},
    {"/a%00b", NULL},
    {"login", NULL},
    {"", NULL},
    {"/?", "/"},
    {"/a/b/c/../../../..", "/"},
    {"/caf%C3%A9", "/caf\xc3\xa9"},
};

Test(match, paths_are_normalised_so_encodings_cannot_dodge_a_rule) {
    for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        const norm_case_t *c = &norm_cases[i];
        char out[RK_PATH_MAX];
        rk_status_t st = rk_path_normalize(c->in, strlen(c->in), out, sizeof out);
        if (!c->out) {
            cr_expect_eq(st, RK_ERR, "%s should be refused", c->in);
            continue;
        }
        cr_expect_eq(st, RK_OK, "%s", c->in);
        cr_expect_str_eq(out, c->out, "%s", c->in);
    }
}

Test(match, an_overlong_path_is_refused_not_truncated) {
    static char big[10000];
    big[0] = '/';
    memset(big + 1, 'a', sizeof big - 2);
    char out[RK_PATH_MAX];
    cr_assert_eq(rk_path_normalize(big, strlen(big), out, sizeof out), RK_ERR);
}

static const struct {
    const char *pattern;
    bool valid;
} pattern_cases[] = {
    {"/login", true},
    {"/api/*", true},
    {"/users/*/orders", true},
    {"/*", true},
    {"/", true},
    {"login", false},
    {"", false},
    {"/api*", false},
    {"/a/*b", false},
    {"/a/b*/c", false},
    {"/a b", false},
    {"/a?x=1", false},
    {"/a#x", false},
    {"/**", false},
    {"/a/\x01", false},
    {"/a%00b", false},
    {"/my%20docs/*", true},
};

Test(match, bad_patterns_are_refused_with_a_reason) {
    for (size_t i = 0; i < sizeof pattern_cases / sizeof pattern_cases[0]; i++) {
        const char *why = NULL;
        cr_expect_eq(rk_path_pattern_valid(pattern_cases[i].pattern, &why), pattern_cases[i].valid,
                     "%s", pattern_cases[i].pattern);
        if (!pattern_cases[i].valid)
            cr_expect(why && *why);
    }
}

typedef struct {
    const char *name;
    const char *value;
} hdr_t;

static const char *lookup(void *ctx, const char *name) {
    for (const hdr_t *h = ctx; h->name; h++)
        if (!strcasecmp(h->name, name))
            return h->value;
    return NULL;
}

Test(match, methods_hosts_and_headers_must_all_agree) {
    rk_match_t m = {0};
    m.methods = RK_METHOD_GET | RK_METHOD_POST;
    cr_assert_eq(rk_match_set_path(&m, "/api/*"), RK_OK);
    cr_assert_eq(rk_match_add_host(&m, "API.example.com"), RK_OK);
    cr_assert_eq(rk_match_add_host(&m, "*.tenants.example.com"), RK_OK);
    cr_assert_eq(rk_match_add_header(&m, "X-Env", "prod"), RK_OK);
    hdr_t prod[] = {{"x-env", "prod"}, {NULL, NULL}};
    hdr_t dev[] = {{"X-Env", "dev"}, {NULL, NULL}};
    hdr_t none[] = {{NULL, NULL}};
    rk_match_request_t r = {RK_METHOD_GET, "/api/items", "api.example.com", lookup, prod};
    cr_assert(rk_match_request(&m, &r));
    r.method = RK_METHOD_POST;
    cr_assert(rk_match_request(&m, &r));
    r.method = RK_METHOD_DELETE;
    cr_assert_not(rk_match_request(&m, &r));
    r.method = RK_METHOD_GET;
    r.host = "a.tenants.example.com";
    cr_assert(rk_match_request(&m, &r));
    r.host = "tenants.example.com";
    cr_assert_not(rk_match_request(&m, &r));
    r.host = "evil.com";
    cr_assert_not(rk_match_request(&m, &r));
    r.host = "api.example.com";
    r.header_ctx = dev;
    cr_assert_not(rk_match_request(&m, &r));
    r.header_ctx = none;
    cr_assert_not(rk_match_request(&m, &r));
    r.header_ctx = prod;
    r.path = "/other";
    cr_assert_not(rk_match_request(&m, &r));
    rk_match_free(&m);
}

Test(match, an_empty_match_covers_every_request) {
    rk_match_t m = {0};
    rk_match_request_t r = {RK_METHOD_PATCH, "/whatever", "", NULL, NULL};
    cr_assert(rk_match_request(&m, &r));
}

Test(match, method_names_map_to_bits) {
    cr_assert_eq(rk_method_bit("GET"), RK_METHOD_GET);
    cr_assert_eq(rk_method_bit("get"), RK_METHOD_GET);
    cr_assert_eq(rk_method_bit("DELETE"), RK_METHOD_DELETE);
    cr_assert_eq(rk_method_bit("PROPFIND"), RK_METHOD_OTHER);
    cr_assert_eq(rk_method_bit(""), 0);
}
