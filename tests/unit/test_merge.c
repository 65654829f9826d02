/*
 * test_merge.c — the merge of two instances' changes made at the same time:
 * the other instance's changes are taken, this one's kept, whatever kind of
 * row (rules, overrides, tokens, list entries) and whatever the change
 * (created, changed, deleted).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "rules/merge.h"

static cJSON *rows(const char *json) {
    cJSON *r = cJSON_Parse(json);
    cr_assert(r != NULL, "bad test JSON: %s", json);
    return r;
}

/* The merge of three JSON texts, printed (rows in the merge's order). */
static char *merged(rk_merge_kind_t kind, const char *base, const char *remote, const char *local) {
    cJSON *b = rows(base), *r = rows(remote), *l = rows(local);
    cJSON *m = rk_merge_rows(kind, b, r, l);
    cr_assert(m != NULL);
    char *text = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    cJSON_Delete(b);
    cJSON_Delete(r);
    cJSON_Delete(l);
    return text;
}

static void expect(rk_merge_kind_t kind, const char *base, const char *remote, const char *local,
                   const char *want) {
    char *got = merged(kind, base, remote, local);
    cr_expect(eq(str, got, (char *)want), "base %s, remote %s, local %s", base, remote, local);
    cJSON_free(got);
}

#define RULE(id, limit)                                                                            \
    "{\"id\":\"" id "\",\"algorithm\":\"fixed_window\",\"limit\":" #limit ",\"window_ms\":60000}"

Test(merge, takes_the_other_side_s_changes_and_keeps_this_one_s) {
    /* created on both sides, each its own rule */
    char *got = merged(RK_MERGE_RULES, "[" RULE("a", 1) "]", "[" RULE("a", 1) "," RULE("b", 2) "]",
                       "[" RULE("a", 1) "," RULE("c", 3) "]");
    cr_expect(strstr(got, "\"id\":\"a\"") && strstr(got, "\"id\":\"b\"") &&
                  strstr(got, "\"id\":\"c\""),
              "%s", got);
    cJSON_free(got);
    /* changed there, untouched here: there's */
    got = merged(RK_MERGE_RULES, "[" RULE("a", 1) "]", "[" RULE("a", 5) "]", "[" RULE("a", 1) "]");
    cr_expect(strstr(got, "\"limit\":5") != NULL, "%s", got);
    cJSON_free(got);
    /* the same member changed on both sides: here's */
    got = merged(RK_MERGE_RULES, "[" RULE("a", 1) "]", "[" RULE("a", 5) "]", "[" RULE("a", 7) "]");
    cr_expect(strstr(got, "\"limit\":7") && !strstr(got, "\"limit\":5"), "%s", got);
    cJSON_free(got);
}

#define RULE_D(id, limit, description)                                                             \
    "{\"id\":\"" id "\",\"description\":\"" description "\",\"algorithm\":\"fixed_window\","       \
    "\"limit\":" #limit ",\"window_ms\":60000}"

Test(merge, a_rule_changed_on_both_sides_keeps_each_side_s_members) {
    /* the limit changed there, the description here: both hold */
    char *got = merged(RK_MERGE_RULES, "[" RULE_D("a", 100, "") "]", "[" RULE_D("a", 5, "") "]",
                       "[" RULE_D("a", 100, "tighten later") "]");
    cr_expect(strstr(got, "\"limit\":5") && strstr(got, "tighten later"), "%s", got);
    cJSON_free(got);
    /* a mix that is no rule (fixed_window there, a burst here): here's whole */
    got = merged(RK_MERGE_RULES,
                 "[{\"id\":\"b\",\"algorithm\":\"token_bucket\",\"limit\":5,\"window_ms\":1000,"
                 "\"burst\":null}]",
                 "[{\"id\":\"b\",\"algorithm\":\"fixed_window\",\"limit\":5,\"window_ms\":1000,"
                 "\"burst\":null}]",
                 "[{\"id\":\"b\",\"algorithm\":\"token_bucket\",\"limit\":5,\"window_ms\":1000,"
                 "\"burst\":9}]");
    cr_expect(strstr(got, "token_bucket") && strstr(got, "\"burst\":9"), "%s", got);
    cJSON_free(got);
}

Test(merge, a_deletion_on_either_side_holds_unless_the_other_changed_the_row) {
    expect(RK_MERGE_RULES, "[" RULE("a", 1) "," RULE("b", 2) "]", "[" RULE("b", 2) "]",
           "[" RULE("a", 1) "," RULE("b", 2) "]", "[" RULE("b", 2) "]");
    expect(RK_MERGE_RULES, "[" RULE("a", 1) "," RULE("b", 2) "]",
           "[" RULE("a", 1) "," RULE("b", 2) "]", "[" RULE("b", 2) "]", "[" RULE("b", 2) "]");
    /* deleted there, changed here: kept, as changed here */
    expect(RK_MERGE_RULES, "[" RULE("a", 1) "]", "[]", "[" RULE("a", 9) "]", "[" RULE("a", 9) "]");
}

Test(merge, a_rule_s_stored_version_and_times_are_no_change) {
    /* each instance numbers its own versions: the same rule, told apart by them only */
    const char *here =
        "[{\"id\":\"a\",\"algorithm\":\"fixed_window\",\"limit\":1,\"window_ms\":60000,"
        "\"version\":7,\"created_at\":\"2026-12-05T10:00:00Z\"}]";
    expect(RK_MERGE_RULES, "[" RULE("a", 1) "]", "[" RULE("a", 4) "]", here, "[" RULE("a", 4) "]");
}

Test(merge, a_token_revoked_here_stays_revoked_while_another_is_created_there) {
    const char *t1 = "{\"id\":\"t1\",\"role\":\"admin\"}",
               *t2 = "{\"id\":\"t2\",\"role\":\"viewer\"}",
               *t3 = "{\"id\":\"t3\",\"role\":\"editor\"}";
    char base[128], remote[128], local[64], want[128];
    snprintf(base, sizeof base, "[%s,%s]", t1, t2);
    snprintf(remote, sizeof remote, "[%s,%s,%s]", t1, t2, t3);
    snprintf(local, sizeof local, "[%s]", t2);
    snprintf(want, sizeof want, "[%s,%s]", t2, t3);
    expect(RK_MERGE_TOKENS, base, remote, local, want);
}

Test(merge, overrides_are_told_apart_by_rule_and_key) {
    expect(RK_MERGE_OVERRIDES, "[]", "[{\"rule\":\"r\",\"key\":\"k1\",\"limit\":5}]",
           "[{\"rule\":\"r\",\"key\":\"k2\",\"limit\":6}]",
           "[{\"rule\":\"r\",\"key\":\"k1\",\"limit\":5},{\"rule\":\"r\",\"key\":\"k2\",\"limit\":"
           "6}]");
}

Test(merge, a_list_entry_created_here_under_an_id_there_gave_another_takes_a_new_one) {
    expect(
        RK_MERGE_LISTS, "[]",
        "[{\"id\":1,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"a\",\"source\":\"list\"}]",
        "[{\"id\":1,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"b\",\"source\":\"list\"}]",
        "[{\"id\":1,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"a\",\"source\":\"list\"},"
        "{\"id\":2,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"b\",\"source\":\"list\"}]");
    /* the same entry under two ids (made on both sides): one entry, there's */
    expect(
        RK_MERGE_LISTS, "[]",
        "[{\"id\":4,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"a\",\"source\":\"list\"}]",
        "[{\"id\":3,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"a\",\"source\":\"list\"}]",
        "[{\"id\":4,\"list\":\"denylist\",\"kind\":\"key\",\"value\":\"a\",\"source\":\"list\"}]");
}
