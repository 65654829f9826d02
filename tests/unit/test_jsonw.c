/*
 * test_jsonw.c — the answer writer: integers as "%lld" writes them, strings
 * escaped so that JSON readers get them back, and growth past the caller's
 * buffer.
 */
#include <time.h>

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "http/jsonw.h"

/* rk_format_int writes v as "%" PRId64 does, and answers its length. */
static void assert_formats_as_printf(int64_t v) {
    char got[RK_INT_TEXT_MAX], want[32];
    size_t n = rk_format_int(v, got);
    snprintf(want, sizeof want, "%" PRId64, v);
    cr_assert_str_eq(got, want);
    cr_assert_eq(n, strlen(want));
}

Test(jsonw, formats_integers_as_printf_does) {
    const int64_t values[] = {
        0,         1,        -1,   9,     10,  11,   99,      100,           101,
        999,       1000,     1001, 12345, -10, -100, -999999, 1795396020000, -1795396020000,
        INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        assert_formats_as_printf(values[i]);
}

Test(jsonw, formats_every_digit_count_at_its_edges) {
    int64_t power = 1;
    for (int digits = 1; digits <= 18; digits++) {
        power *= 10; /* 9, 10, 99, 100, ... 10^18, and their negatives */
        assert_formats_as_printf(power - 1);
        assert_formats_as_printf(power);
        assert_formats_as_printf(-(power - 1));
        assert_formats_as_printf(-power);
    }
}

Test(jsonw, escapes_quotes_backslashes_and_control_characters) {
    char stack[8];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_jw_str(&w, "a\"b\\c\x01\x7f\xc3\xa9 long enough to leave the stack buffer");
    cr_assert_not(w.failed);
    cr_assert_str_eq(w.buf,
                     "\"a\\\"b\\\\c\\u0001\\u007f\xc3\xa9 long enough to leave the stack buffer\"");
    cr_assert(w.on_heap);
    rk_jw_free(&w);
}

Test(jsonw, writes_members_after_the_first) {
    char stack[4]; /* too small from the start: every member grows it */
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_jw_raw(&w, "{\"a\":1", 6);
    rk_jw_member_int(&w, "limit", -42);
    rk_jw_member_str(&w, "rule", "r\"1");
    rk_jw_member_bool(&w, "ok", true);
    rk_jw_raw(&w, "}", 1);
    cr_assert_str_eq(w.buf, "{\"a\":1,\"limit\":-42,\"rule\":\"r\\\"1\",\"ok\":true}");
    cr_assert_eq(w.len, strlen(w.buf));
    rk_jw_free(&w);
}

/* Well-formed UTF-8 stays as it is; every byte of a malformed sequence becomes '?'. */
Test(utf8_scrub, keeps_well_formed_text_and_marks_each_bad_byte) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain ascii", "plain ascii"},
        {"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"a\xff"
         "b",
         "a?b"},
        {"\xc0\xaf", "??"},           /* an overlong "/" */
        {"\xed\xa0\x80", "???"},      /* a surrogate */
        {"\xf4\x90\x80\x80", "????"}, /* past U+10FFFF */
        {"\xe2\x82", "??"},           /* cut short at the end */
        {"\xe2\x82x", "??x"},         /* cut short in the middle */
        {"\x80", "?"},                /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[32];
        snprintf(text, sizeof text, "%s", cases[i].in);
        rk_utf8_scrub(text);
        cr_assert_str_eq(text, cases[i].out, "case %zu", i);
    }
}

/* A wait's deadline: ms later on the clock, its nanoseconds carried into seconds. */
Test(common, timespec_in_is_ms_later_and_normalised) {
    for (int64_t ms = 0; ms < 2000; ms += 137) {
        struct timespec before, at;
        clock_gettime(CLOCK_MONOTONIC, &before);
        rk_timespec_in(&at, CLOCK_MONOTONIC, ms);
        int64_t later_ns =
            (int64_t)(at.tv_sec - before.tv_sec) * 1000000000 + (at.tv_nsec - before.tv_nsec);
        cr_assert(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L, "tv_nsec %ld", at.tv_nsec);
        cr_assert(later_ns >= ms * 1000000 && later_ns < ms * 1000000 + 50000000,
                  "%lld ms gave %lld ns", (long long)ms, (long long)later_ns);
    }
}
