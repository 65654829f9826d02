/*
 * test_check_reader.c — the data plane's JSON reader of a check body: what
 * it reads, what it decodes, and what it refuses.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/check_reader.h"

static char buf[8192];
static rk_check_body_t body;

/* Reads text (copied into a writable buffer, as the body is). */
static rk_check_read_status_t read_text(const char *text) {
    size_t n = strlen(text);
    cr_assert_lt(n, sizeof buf);
    memcpy(buf, text, n + 1);
    return rk_check_read(buf, n, &body);
}

static void assert_str(const rk_jv_t *v, const char *want) {
    cr_assert_eq(v->kind, RK_JV_STRING);
    cr_assert_eq(v->len, strlen(want), "length %zu, want %zu", v->len, strlen(want));
    cr_assert_eq(memcmp(v->str, want, v->len), 0);
    cr_assert_eq(v->str[v->len], '\0');
}

Test(check_reader, reads_the_direct_form) {
    cr_assert_eq(read_text(" {\"rule\": \"login\", \"key\": \"203.0.113.7\", \"cost\": 3}\n"),
                 RK_CHECK_READ_OK);
    cr_assert_eq(body.root, RK_JV_OBJECT);
    assert_str(&body.rule, "login");
    assert_str(&body.key, "203.0.113.7");
    int64_t cost = 1;
    cr_assert(rk_jv_int(&body.cost, 0, 1000000000, &cost));
    cr_assert_eq(cost, 3);
    cr_assert_eq(body.request.kind, RK_JV_ABSENT);
}

Test(check_reader, reads_the_context_form_and_its_headers) {
    cr_assert_eq(read_text("{\"request\": {\"method\": \"GET\", \"path\": \"/api/items?x=1\", "
                           "\"ip\": \"10.0.0.1\", \"host\": \"api.example.com\", "
                           "\"headers\": {\"X-API-Key\": \"k1\", \"X-Num\": 5, \"x-user-id\": "
                           "\"u\\u0031\"}, \"extra\": [1, {\"a\": null}]}, \"cost\": 2}"),
                 RK_CHECK_READ_OK);
    cr_assert_eq(body.request.kind, RK_JV_OBJECT);
    assert_str(&body.method, "GET");
    assert_str(&body.path, "/api/items?x=1");
    assert_str(&body.ip, "10.0.0.1");
    assert_str(&body.host, "api.example.com");
    cr_assert_eq(body.headers.kind, RK_JV_OBJECT);
    cr_assert_str_eq(rk_check_body_header(&body, "x-api-key"), "k1");
    cr_assert_str_eq(rk_check_body_header(&body, "X-User-Id"), "u1");
    cr_assert_null(rk_check_body_header(&body, "X-Num"), "a header that is no string is absent");
    cr_assert_null(rk_check_body_header(&body, "X-Other"));
    /* members named like the request's, elsewhere, are not the request's */
    cr_assert_eq(read_text("{\"x\": {\"path\": \"/a\"}, \"rule\": \"r\", \"key\": \"k\"}"),
                 RK_CHECK_READ_OK);
    cr_assert_eq(body.path.kind, RK_JV_ABSENT);
}

Test(check_reader, decodes_escapes_in_place_without_touching_the_next_member) {
    cr_assert_eq(read_text("{\"key\": \"a\\\"b\\\\c\\/d\\n\\u00e9\\u20ac\\ud83d\\ude00\", "
                           "\"rule\": \"r\\u0031\"}"),
                 RK_CHECK_READ_OK);
    assert_str(&body.key, "a\"b\\c/d\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_str(&body.rule, "r1");
}

Test(check_reader, reads_numbers_as_cjson_does) {
    int64_t v;
    const char *ints[] = {"1.0", "1e3", "1E+3", "10000e-1", "-0", "0"};
    const int64_t want[] = {1, 1000, 1000, 1000, 0, 0};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"cost\": %s}", ints[i]);
        cr_assert_eq(read_text(text), RK_CHECK_READ_OK, "%s", text);
        v = -1;
        cr_assert(rk_jv_int(&body.cost, 0, 1000000000, &v), "%s", text);
        cr_assert_eq(v, want[i], "%s", text);
    }
    /* 1e-400 is no integer, though a double reads it as 0 (as cJSON does). */
    const char *bad[] = {"1.5",     "-1",    "1000000001", "1e300", "1e-400",
                         "-1e-400", "\"1\"", "true",       "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"cost\": %s}", bad[i]);
        cr_assert_eq(read_text(text), RK_CHECK_READ_OK, "%s", text);
        cr_assert_not(rk_jv_int(&body.cost, 0, 1000000000, &v), "%s", text);
    }
    cr_assert_eq(read_text("{\"cost\": null}"), RK_CHECK_READ_OK);
    v = 7;
    cr_assert(rk_jv_int(&body.cost, 0, 10, &v));
    cr_assert_eq(v, 7, "null leaves the default");
}

Test(check_reader, refuses_what_is_not_exactly_one_json_value) {
    const char *bad[] = {
        "",
        "   ",
        "{",
        "{\"rule\": \"r\"} x",
        "{\"rule\": \"r\"}{}",
        "{\"rule\": \"r\",}",
        "{\"rule\" \"r\"}",
        "{rule: \"r\"}",
        "{'rule': 'r'}",
        "{\"rule\": \"r\" /* c */}",
        "{\"cost\": 01}",
        "{\"cost\": 1.}",
        "{\"cost\": .5}",
        "{\"cost\": +1}",
        "{\"cost\": 1e}",
        "{\"cost\": -}",
        "{\"cost\": NaN}",
        "{\"x\": tru}",
        "{\"x\": nul}",
        "[1, 2,]",
        "{\"key\": \"unterminated}",
        "{\"key\": \"a\\x\"}",
        "{\"key\": \"\\u12\"}",
        "{\"key\": \"\\u0000\"}",
        "{\"key\": \"\\udc00\"}",
        "{\"key\": \"\\ud83d\"}",
        "{\"key\": \"\\ud83d\\u0041\"}",
        "{\"key\": \"tab\there\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(read_text(bad[i]), RK_CHECK_READ_INVALID_JSON, "accepted: %s", bad[i]);
    /* a NUL byte in the body */
    memcpy(buf, "{\"key\": \"a\0b\"}", 15);
    cr_assert_eq(rk_check_read(buf, 15, &body), RK_CHECK_READ_INVALID_JSON);
    memcpy(buf, "{}\0", 3);
    cr_assert_eq(rk_check_read(buf, 3, &body), RK_CHECK_READ_INVALID_JSON);
}

Test(check_reader, refuses_nesting_deeper_than_its_bound) {
    char deep[2 * RK_CHECK_READER_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < RK_CHECK_READER_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < RK_CHECK_READER_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    cr_assert_eq(read_text(deep), RK_CHECK_READ_OK);
    memmove(deep + 1, deep, n + 1);
    deep[0] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    cr_assert_eq(read_text(deep), RK_CHECK_READ_INVALID_JSON);
}

Test(check_reader, refuses_a_member_it_reads_given_twice) {
    cr_assert_eq(read_text("{\"rule\": \"a\", \"key\": \"k\", \"rule\": \"b\"}"),
                 RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_text("{\"cost\": 1, \"cost\": 1}"), RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_text("{\"request\": {\"path\": \"/a\", \"path\": \"/b\"}}"),
                 RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_text("{\"request\": {\"path\": \"/a\", \"headers\": {\"A\": \"1\", \"A\": "
                           "\"2\"}}}"),
                 RK_CHECK_READ_DUPLICATE);
    /* an escaped spelling is the same name */
    cr_assert_eq(read_text("{\"rule\": \"a\", \"\\u0072ule\": \"b\"}"), RK_CHECK_READ_DUPLICATE);
    /* header names differing in case only are one header given twice */
    cr_assert_eq(read_text("{\"request\": {\"path\": \"/a\", \"headers\": {\"X-Tenant\": \"1\", "
                           "\"x-tenant\": \"2\"}}}"),
                 RK_CHECK_READ_DUPLICATE);
    /* names ratekit does not read may repeat */
    cr_assert_eq(read_text("{\"x\": 1, \"x\": 2, \"rule\": \"r\"}"), RK_CHECK_READ_OK);
    cr_assert_eq(read_text("{\"request\": {\"path\": \"/a\", \"headers\": {\"A\": \"1\", \"B\": "
                           "\"2\"}}}"),
                 RK_CHECK_READ_OK);
    cr_assert_str_eq(rk_check_body_header(&body, "a"), "1", "looked up in any case");
}

/* A context check whose headers are n pads ("h0": "v", ...), then `tail` (members, or ""). */
static rk_check_read_status_t read_padded(int n, const char *tail) {
    static char text[sizeof buf];
    size_t len =
        (size_t)snprintf(text, sizeof text, "{\"request\": {\"path\": \"/\", \"headers\": {");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\"h%d\": \"v%d\"", i ? ", " : "",
                                i, i);
    snprintf(text + len, sizeof text - len, "%s%s}}}", n && *tail ? ", " : "", tail);
    return read_text(text);
}

Test(check_reader, keeps_the_first_headers_up_to_its_bound_and_ignores_the_rest) {
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS + 36, ""), RK_CHECK_READ_OK);
    cr_assert_eq(body.nheaders, RK_CHECK_READER_MAX_HEADERS);
    cr_assert_str_eq(rk_check_body_header(&body, "h0"), "v0");
    cr_assert_str_eq(rk_check_body_header(&body, "H63"), "v63");
    cr_assert_null(rk_check_body_header(&body, "h64"), "past the bound: as if absent");
    cr_assert_null(rk_check_body_header(&body, "h99"));
    /* a header of its own name past the bound is ignored as well */
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS, "\"X-Tenant\": \"t1\""),
                 RK_CHECK_READ_OK);
    cr_assert_null(rk_check_body_header(&body, "x-tenant"));
    /* the bound itself is read whole */
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS - 1, "\"X-Tenant\": \"t1\""),
                 RK_CHECK_READ_OK);
    cr_assert_str_eq(rk_check_body_header(&body, "x-tenant"), "t1");
}

Test(check_reader, keeps_the_headers_ratekit_reads_by_name_past_its_bound) {
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS + 10,
                             "\"X-Forwarded-For\": \"198.51.100.1\", \"Forwarded\": "
                             "\"for=192.0.2.1\", \"x-real-ip\": \"192.0.2.2\", \"Authorization\": "
                             "\"Bearer t\", \"X-User-Id\": \"u1\", \"X-API-Key\": \"k1\", "
                             "\"X-Plan\": \"pro\", \"X-Tenant\": \"t1\""),
                 RK_CHECK_READ_OK);
    cr_assert_eq(body.nheaders, RK_CHECK_READER_MAX_HEADERS + RK_CHECK_READER_ALWAYS_READ);
    cr_assert_str_eq(rk_check_body_header(&body, "x-forwarded-for"), "198.51.100.1");
    cr_assert_str_eq(rk_check_body_header(&body, "forwarded"), "for=192.0.2.1");
    cr_assert_str_eq(rk_check_body_header(&body, "X-Real-IP"), "192.0.2.2");
    cr_assert_str_eq(rk_check_body_header(&body, "authorization"), "Bearer t");
    cr_assert_str_eq(rk_check_body_header(&body, "x-user-id"), "u1");
    cr_assert_str_eq(rk_check_body_header(&body, "x-api-key"), "k1");
    cr_assert_str_eq(rk_check_body_header(&body, "x-plan"), "pro");
    cr_assert_null(rk_check_body_header(&body, "x-tenant"), "a rule's own header: ignored");
    cr_assert(rk_check_reader_always_reads("X-FORWARDED-FOR"));
    cr_assert_not(rk_check_reader_always_reads("X-Tenant"));
}

Test(check_reader, refuses_a_header_past_its_bound_that_repeats_a_kept_one) {
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS + 1, "\"H3\": \"other\""),
                 RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS + 1,
                             "\"X-User-Id\": \"u1\", \"x-user-id\": \"u2\""),
                 RK_CHECK_READ_DUPLICATE);
    /* two ignored headers of one name: neither counts, nothing to disagree on */
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS, "\"X-A\": \"1\", \"x-a\": \"2\""),
                 RK_CHECK_READ_OK);
}

Test(check_reader, checks_the_syntax_of_the_headers_it_ignores) {
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS, "\"X-A\": \"\\x\""),
                 RK_CHECK_READ_INVALID_JSON);
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS, "\"X-A\": [1, {\"b\": tru}]"),
                 RK_CHECK_READ_INVALID_JSON);
    cr_assert_eq(read_padded(RK_CHECK_READER_MAX_HEADERS, "\"X-A\": [1, {\"b\": true}]"),
                 RK_CHECK_READ_OK);
}

Test(check_reader, tells_the_kind_of_a_body_that_is_no_object) {
    cr_assert_eq(read_text("[{\"rule\": \"r\"}]"), RK_CHECK_READ_OK);
    cr_assert_eq(body.root, RK_JV_ARRAY);
    cr_assert_eq(body.rule.kind, RK_JV_ABSENT);
    cr_assert_eq(read_text("\"text\""), RK_CHECK_READ_OK);
    cr_assert_eq(body.root, RK_JV_STRING);
    cr_assert_eq(read_text("{\"rule\": 5, \"key\": null, \"request\": \"x\"}"), RK_CHECK_READ_OK);
    cr_assert_eq(body.rule.kind, RK_JV_NUMBER);
    cr_assert_eq(body.key.kind, RK_JV_NULL);
    cr_assert_eq(body.request.kind, RK_JV_STRING);
}

/* ---- batch and release bodies ------------------------------------------ */

static rk_check_batch_t batch;

static rk_check_read_status_t read_batch(const char *text) {
    size_t n = strlen(text);
    cr_assert_lt(n, sizeof buf);
    memcpy(buf, text, n + 1);
    return rk_check_read_batch(buf, n, &batch);
}

static rk_check_read_status_t read_release(const char *text, rk_release_body_t *out) {
    size_t n = strlen(text);
    cr_assert_lt(n, sizeof buf);
    memcpy(buf, text, n + 1);
    return rk_check_read_release(buf, n, out);
}

Test(check_reader, reads_a_batch_entry_by_entry) {
    cr_assert_eq(read_batch("{\"x\": {\"checks\": 1}, \"checks\": [{\"rule\": \"a\", \"key\": "
                            "\"k\\u0031\", \"cost\": 2}, 7, {\"request\": {\"path\": \"/\"}, "
                            "\"rule\": \"b\"}, {\"rule\": \"a\", \"rule\": \"b\", \"key\": "
                            "\"k\"}]}"),
                 RK_CHECK_READ_OK);
    cr_assert_eq(batch.root, RK_JV_OBJECT);
    cr_assert_eq(batch.checks.kind, RK_JV_ARRAY);
    cr_assert_eq(batch.n, 4);
    cr_assert_eq(batch.entry[0].kind, RK_JV_OBJECT);
    assert_str(&batch.entry[0].rule, "a");
    assert_str(&batch.entry[0].key, "k1");
    cr_assert_eq(batch.entry[0].cost.num, 2);
    cr_assert_not(batch.entry[0].duplicate);
    cr_assert_eq(batch.entry[1].kind, RK_JV_NUMBER);
    cr_assert_eq(batch.entry[2].request.kind, RK_JV_OBJECT);
    assert_str(&batch.entry[2].rule, "b");
    /* a member given twice refuses its entry, never picks one */
    cr_assert(batch.entry[3].duplicate);
    assert_str(&batch.entry[3].rule, "a");
}

Test(check_reader, refuses_in_a_batch_what_it_refuses_in_a_check) {
    /* "\u0000" would cut a key short in a NUL-terminated reader */
    cr_assert_eq(read_batch("{\"checks\": [{\"rule\": \"a\", \"key\": \"nk\\u0000zzz\"}]}"),
                 RK_CHECK_READ_INVALID_JSON);
    cr_assert_eq(read_batch("{\"checks\": [], \"checks\": [{\"rule\": \"a\", \"key\": \"k\"}]}"),
                 RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_batch("{\"checks\": [{\"rule\": \"a\"}] } x"), RK_CHECK_READ_INVALID_JSON);
    cr_assert_eq(read_batch("{\"checks\": {\"rule\": \"a\"}}"), RK_CHECK_READ_OK);
    cr_assert_eq(batch.checks.kind, RK_JV_OBJECT);
    cr_assert_eq(batch.n, 0, "an object's members are no entries");
}

Test(check_reader, counts_every_entry_of_a_batch_beyond_those_it_keeps) {
    static char text[8000];
    size_t n = (size_t)snprintf(text, sizeof text, "{\"checks\": [");
    for (int i = 0; i < RK_CHECK_READER_BATCH_MAX + 5; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s{\"rule\": \"r\", \"key\": \"k%d\"}",
                              i ? ", " : "", i);
    snprintf(text + n, sizeof text - n, "]}");
    cr_assert_eq(read_batch(text), RK_CHECK_READ_OK);
    cr_assert_eq(batch.n, RK_CHECK_READER_BATCH_MAX + 5);
    assert_str(&batch.entry[RK_CHECK_READER_BATCH_MAX - 1].key, "k99");
}

Test(check_reader, reads_a_release_as_strictly_as_a_check) {
    rk_release_body_t r;
    cr_assert_eq(read_release("{\"lease\": \"w.0123-1.k\", \"rule\": 1, \"rule\": 2}", &r),
                 RK_CHECK_READ_OK);
    cr_assert_eq(r.root, RK_JV_OBJECT);
    assert_str(&r.lease, "w.0123-1.k");
    cr_assert_eq(read_release("{\"lease\": \"w.0123-1.k\\u0000x\"}", &r),
                 RK_CHECK_READ_INVALID_JSON);
    cr_assert_eq(read_release("{\"lease\": \"a\", \"lease\": \"b\"}", &r), RK_CHECK_READ_DUPLICATE);
    cr_assert_eq(read_release("[\"lease\"]", &r), RK_CHECK_READ_OK);
    cr_assert_eq(r.root, RK_JV_ARRAY);
    cr_assert_eq(r.lease.kind, RK_JV_ABSENT);
}
