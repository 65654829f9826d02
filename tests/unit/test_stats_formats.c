/*
 * test_stats_formats.c — what the observability endpoints write: CSV
 * fields of the denial log export, Prometheus label values, times with
 * milliseconds.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "stats/metrics.h"

static char out[512];

static const char *csv(const char *field) {
    char stack[16];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_csv_field(&w, field);
    snprintf(out, sizeof out, "%s", w.buf);
    rk_jw_free(&w);
    return out;
}

static const char *label(const char *value) {
    char stack[16];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_prom_label_value(&w, value);
    snprintf(out, sizeof out, "%s", w.buf);
    rk_jw_free(&w);
    return out;
}

Test(csv_field, plain_text_is_written_as_is) {
    cr_assert_str_eq(csv("203.0.113.7"), "203.0.113.7");
    cr_assert_str_eq(csv(""), "");
}

Test(csv_field, commas_quotes_and_line_breaks_are_quoted_and_quotes_doubled) {
    cr_assert_str_eq(csv("a,b"), "\"a,b\"");
    cr_assert_str_eq(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    cr_assert_str_eq(csv("two\nlines"), "\"two\nlines\"");
    cr_assert_str_eq(csv("cr\rhere"), "\"cr\rhere\"");
}

Test(csv_field, leading_or_trailing_spaces_are_kept_by_quoting) {
    cr_assert_str_eq(csv(" padded "), "\" padded \"");
}

/* A client chooses its key: an export opened in a spreadsheet must not run it. */
Test(csv_field, a_field_a_spreadsheet_would_run_as_a_formula_is_written_as_text) {
    cr_assert_str_eq(csv("=HYPERLINK(\"http://evil.example/\",\"x\")"),
                     "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\"");
    cr_assert_str_eq(csv("@SUM(1+1)"), "\"'@SUM(1+1)\"");
    cr_assert_str_eq(csv("+1"), "\"'+1\"");
    cr_assert_str_eq(csv("-2+3"), "\"'-2+3\"");
    cr_assert_str_eq(csv("\tcmd"), "\"'\tcmd\"");
    cr_assert_str_eq(csv("user=1"), "user=1", "only a leading sign counts");
}

Test(prom_label, backslash_quote_and_newline_are_escaped_and_nothing_else) {
    cr_assert_str_eq(label("api-per-ip"), "api-per-ip");
    cr_assert_str_eq(label("a\\b"), "a\\\\b");
    cr_assert_str_eq(label("say \"x\""), "say \\\"x\\\"");
    cr_assert_str_eq(label("l1\nl2"), "l1\\nl2");
    cr_assert_str_eq(label("tab\there"), "tab\there");
}

Test(time_format, milliseconds_are_kept_in_iso_8601_utc) {
    char when[32];
    rk_format_time_ms(1700000000123LL, when);
    cr_assert_str_eq(when, "2023-11-14T22:13:20.123Z");
    rk_format_time_ms(0, when);
    cr_assert_str_eq(when, "1970-01-01T00:00:00.000Z");
}
