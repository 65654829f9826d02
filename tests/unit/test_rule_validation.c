/*
 * test_rule_validation.c — what a user sending a rule sees: every problem
 * listed with its field, defaults filled in, windows as window_ms, and the
 * compiled rule the check path reads.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "rules/rule.h"

/* Validates a JSON text; returns the canonical rule or NULL, errors in *errors. */
static cJSON *validate(const char *text, cJSON **errors) {
    cJSON *doc = cJSON_Parse(text);
    if (!doc)
        cr_fatal("test JSON does not parse: %s", text);
    *errors = cJSON_CreateArray();
    cJSON *canon = rk_rule_canonical(doc, *errors);
    cJSON_Delete(doc);
    return canon;
}

/* Whether errors names field. */
static bool has_error(const cJSON *errors, const char *field) {
    const cJSON *e;
    cJSON_ArrayForEach(e, errors) {
        if (!strcmp(cJSON_GetObjectItem(e, "field")->valuestring, field))
            return true;
    }
    return false;
}

/* Asserts that the text is refused with an error on field. */
static void assert_refused(const char *text, const char *field) {
    cJSON *errors;
    cJSON *canon = validate(text, &errors);
    char *listed = cJSON_PrintUnformatted(errors);
    cr_assert_null(canon, "accepted: %s", text);
    cr_assert(has_error(errors, field), "no error on %s for %s: %s", field, text, listed);
    cJSON_free(listed);
    cJSON_Delete(errors);
}

static void assert_accepted(const char *text) {
    cJSON *errors;
    cJSON *canon = validate(text, &errors);
    char *listed = cJSON_PrintUnformatted(errors);
    cr_assert_not_null(canon, "refused: %s: %s", text, listed);
    cJSON_free(listed);
    cJSON_Delete(errors);
    cJSON_Delete(canon);
}

static int64_t num(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItem(obj, name);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", name);
    return (int64_t)v->valuedouble;
}

#define BASE "\"id\":\"r1\",\"algorithm\":\"fixed_window\",\"limit\":10,\"window_ms\":1000"
/* a rule whose algorithm uses a burst */
#define TB_BASE "\"id\":\"r1\",\"algorithm\":\"token_bucket\",\"limit\":10,\"window_ms\":1000"

Test(rule_validation, minimal_rule_gets_defaults_filled_in) {
    cJSON *errors;
    cJSON *canon = validate("{" BASE "}", &errors);
    cr_assert_not_null(canon);
    cr_assert_str_eq(cJSON_GetObjectItem(canon, "mode")->valuestring, "enforce");
    cr_assert_eq(num(canon, "priority"), 100);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(canon, "burst")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(canon, "fail_mode")));
    cJSON *key = cJSON_GetObjectItem(canon, "key");
    cr_assert_eq(cJSON_GetArraySize(key), 1);
    cr_assert_str_eq(cJSON_GetArrayItem(key, 0)->valuestring, "ip");
    cJSON *match = cJSON_GetObjectItem(canon, "match");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(match, "path")));
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(match, "methods")), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(canon, "description")->valuestring, "");
    cr_assert_null(cJSON_GetObjectItem(canon, "shape"), "shape only for leaky_bucket");
    cJSON_Delete(canon);
    cJSON_Delete(errors);
}

Test(rule_validation, window_duration_strings_become_window_ms) {
    static const struct {
        const char *window;
        int64_t ms;
    } cases[] = {{"500ms", 500},  {"30s", 30000},   {"1m", 60000},
                 {"1h", 3600000}, {"1d", 86400000}, {"7d", 604800000}};
    for (size_t i = 0; i < RK_ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"id\":\"w\",\"algorithm\":\"gcra\",\"limit\":5,\"window\":\"%s\"}",
                 cases[i].window);
        cJSON *errors;
        cJSON *canon = validate(text, &errors);
        cr_assert_not_null(canon, "%s refused", cases[i].window);
        cr_assert_eq(num(canon, "window_ms"), cases[i].ms, "%s", cases[i].window);
        cr_assert_null(cJSON_GetObjectItem(canon, "window"));
        cJSON_Delete(canon);
        cJSON_Delete(errors);
    }
}

Test(rule_validation, bad_durations_are_refused) {
    static const char *const bad[] = {
        "1.5s", "10w", "-1s", "", "s", "8d", "0s", "1 s", "99999999999999999999ms"};
    for (size_t i = 0; i < RK_ARRAY_LEN(bad); i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"id\":\"w\",\"algorithm\":\"gcra\",\"limit\":5,\"window\":\"%s\"}", bad[i]);
        assert_refused(text, "window");
    }
    assert_refused("{\"id\":\"w\",\"algorithm\":\"gcra\",\"limit\":5,\"window\":\"1s\","
                   "\"window_ms\":1000}",
                   "window");
    assert_refused("{\"id\":\"w\",\"algorithm\":\"gcra\",\"limit\":5}", "window_ms");
}

Test(rule_validation, duration_parser_reads_every_unit) {
    int64_t ms = 0;
    cr_assert_eq(rk_duration_parse("250ms", &ms), RK_OK);
    cr_assert_eq(ms, 250);
    cr_assert_eq(rk_duration_parse("2h", &ms), RK_OK);
    cr_assert_eq(ms, 7200000);
    cr_assert_eq(rk_duration_parse("1m30s", &ms), RK_ERR);
    cr_assert_eq(rk_duration_parse("604800001ms", &ms), RK_ERR);
}

Test(rule_validation, limit_must_be_an_integer_within_the_algorithm_bound) {
    assert_refused("{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":0,\"window_ms\":1}",
                   "limit");
    assert_refused(
        "{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":10000001,\"window_ms\":1}",
        "limit");
    assert_refused("{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":1.5,\"window_ms\":1}",
                   "limit");
    assert_refused("{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":\"10\",\"window_ms\":1}",
                   "limit");
    /* valueint would clamp this to INT_MAX and look valid-ish */
    assert_refused("{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":1e300,\"window_ms\":1}",
                   "limit");
    assert_accepted(
        "{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":10000000,\"window_ms\":1}");
    assert_refused("{\"id\":\"r\",\"algorithm\":\"sliding_log\",\"limit\":100001,\"window_ms\":1}",
                   "limit");
    assert_accepted(
        "{\"id\":\"r\",\"algorithm\":\"sliding_log\",\"limit\":100000,\"window_ms\":1}");
    assert_refused("{\"id\":\"r\",\"algorithm\":\"concurrency\",\"limit\":10001,\"window_ms\":1}",
                   "limit");
    assert_refused(
        "{\"id\":\"r\",\"algorithm\":\"fixed_window\",\"limit\":1,\"window_ms\":604800001}",
        "window_ms");
    assert_refused("{" TB_BASE ",\"burst\":0}", "burst");
    assert_refused("{" TB_BASE ",\"burst\":10000001}", "burst");
    assert_refused("{" BASE ",\"priority\":2.5}", "priority");
}

Test(rule_validation, every_problem_is_listed_at_once) {
    cJSON *errors;
    cJSON *canon = validate("{\"id\":\"Bad Id\",\"algorithm\":\"magic\",\"limit\":0,"
                            "\"window\":\"soon\",\"mode\":\"loud\",\"colour\":\"red\","
                            "\"key\":[\"cookie\"]}",
                            &errors);
    cr_assert_null(canon);
    static const char *const fields[] = {"id",   "algorithm", "limit", "window",
                                         "mode", "colour",    "key[0]"};
    for (size_t i = 0; i < RK_ARRAY_LEN(fields); i++)
        cr_assert(has_error(errors, fields[i]), "no error for %s", fields[i]);
    cJSON *e;
    cJSON_ArrayForEach(e, errors) {
        cr_assert(strlen(cJSON_GetObjectItem(e, "message")->valuestring) > 0);
    }
    cJSON_Delete(errors);
}

Test(rule_validation, ids_follow_the_pattern_and_reserved_names_are_refused) {
    assert_accepted("{\"id\":\"0api_v2-x\",\"algorithm\":\"gcra\",\"limit\":1,\"window_ms\":1}");
    static const char *const bad[] = {
        "",       "-x",     "_x",
        "API",    "a b",    "a/b",
        "export", "import", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < RK_ARRAY_LEN(bad); i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"id\":\"%s\",\"algorithm\":\"gcra\",\"limit\":1,\"window_ms\":1}", bad[i]);
        assert_refused(text, "id");
    }
    assert_refused("{\"algorithm\":\"gcra\",\"limit\":1,\"window_ms\":1}", "id");
}

Test(rule_validation, unknown_and_repeated_fields_are_refused) {
    assert_refused("{" BASE ",\"limt\":5}", "limt");
    assert_refused("{" BASE ",\"limit\":5}", "limit");
    assert_refused("{" BASE ",\"match\":{\"paths\":\"/x\"}}", "match");
    assert_refused("{" BASE ",\"plans\":{\"pro\":{\"rate\":5}}}", "plans.pro");
    /* what the API answers may be sent back as it is */
    assert_accepted("{" BASE ",\"version\":3,\"created_at\":\"2026-01-01T00:00:00Z\","
                    "\"updated_at\":\"2026-01-01T00:00:00Z\"}");
}

Test(rule_validation, shape_applies_to_leaky_bucket_only) {
    assert_refused(
        "{\"id\":\"s\",\"algorithm\":\"token_bucket\",\"limit\":1,\"window_ms\":1,\"shape\":true}",
        "shape");
    assert_refused(
        "{\"id\":\"s\",\"algorithm\":\"leaky_bucket\",\"limit\":1,\"window_ms\":1,\"shape\":1}",
        "shape");
    cJSON *errors;
    cJSON *canon =
        validate("{\"id\":\"s\",\"algorithm\":\"leaky_bucket\",\"limit\":4,\"window_ms\":1000,"
                 "\"shape\":true}",
                 &errors);
    cr_assert_not_null(canon);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(canon, "shape")));
    rk_rule_t rule;
    cr_assert_eq(rk_rule_compile(canon, 1, &rule), RK_OK);
    cr_assert(rule.limit.shape);
    cr_assert_eq(rule.limit.algorithm, RK_ALG_LEAKY_BUCKET);
    rk_rule_free(&rule);
    cJSON_Delete(canon);
    cJSON_Delete(errors);
}

Test(rule_validation, a_stored_rule_whose_id_an_answer_could_not_carry_does_not_compile) {
    /* A row edited in the database by hand: the API never stores such an id. */
    cJSON *canon = cJSON_Parse(
        "{\"id\":\"a\\\"b\",\"algorithm\":\"fixed_window\",\"limit\":1,\"window_ms\":1000}");
    cr_assert_not_null(canon);
    cr_assert_str_eq(cJSON_GetObjectItem(canon, "id")->valuestring, "a\"b");
    rk_rule_t rule;
    cr_assert_eq(rk_rule_compile(canon, 1, &rule), RK_ERR);
    rk_rule_free(&rule);
    cJSON_Delete(canon);
}

Test(rule_validation, key_chain_parts_and_tuples) {
    assert_accepted("{" BASE ",\"key\":[\"user\",\"api_key\",\"ip+route\",\"header:X-Tenant\","
                    "\"jwt:sub\",\"global\"]}");
    assert_accepted("{" BASE ",\"key\":\"ip\"}");
    assert_refused("{" BASE ",\"key\":[]}", "key");
    assert_refused("{" BASE ",\"key\":[\"header:\"]}", "key[0]");
    assert_refused("{" BASE ",\"key\":[\"ip\",\"jwt:a b\"]}", "key[1]");
    assert_refused("{" BASE ",\"key\":[\"ip+ip+ip+ip+ip\"]}", "key[0]");
    assert_refused("{" BASE ",\"key\":[\"ip+\"]}", "key[0]");
    assert_refused("{" BASE ",\"key\":[1]}", "key[0]");
    assert_refused("{" BASE ",\"key\":[\"ip\",\"ip\",\"ip\",\"ip\",\"ip\",\"ip\",\"ip\",\"ip\","
                   "\"ip\"]}",
                   "key");
}

Test(rule_validation, match_is_validated_and_normalised) {
    cJSON *errors;
    cJSON *canon = validate("{" BASE ",\"match\":{\"methods\":[\"get\",\"POST\",\"GET\"],"
                            "\"path\":\"/users/*/orders\",\"hosts\":[\"API.example.com\","
                            "\"*.example.org\"],\"headers\":{\"X-Env\":\"prod\"}}}",
                            &errors);
    cr_assert_not_null(canon);
    cJSON *match = cJSON_GetObjectItem(canon, "match");
    cJSON *methods = cJSON_GetObjectItem(match, "methods");
    cr_assert_eq(cJSON_GetArraySize(methods), 2, "a repeated method is kept once");
    cr_assert_str_eq(cJSON_GetArrayItem(methods, 0)->valuestring, "GET");
    cr_assert_str_eq(cJSON_GetArrayItem(methods, 1)->valuestring, "POST");
    cJSON *hosts = cJSON_GetObjectItem(match, "hosts");
    cr_assert_str_eq(cJSON_GetArrayItem(hosts, 0)->valuestring, "*.example.org", "sorted");
    cr_assert_str_eq(cJSON_GetArrayItem(hosts, 1)->valuestring, "api.example.com");
    cr_assert_str_eq(cJSON_GetObjectItem(match, "headers")->child->string, "x-env");

    rk_rule_t rule;
    cr_assert_eq(rk_rule_compile(canon, 7, &rule), RK_OK);
    cr_assert_eq(rule.match.methods, RK_METHOD_GET | RK_METHOD_POST);
    cr_assert(rk_match_path(&rule.match, "/users/42/orders"));
    cr_assert_not(rk_match_path(&rule.match, "/users/42/invoices"));
    cr_assert_eq(rule.match.nhosts, 2);
    cr_assert_eq(rule.match.nheaders, 1);
    cr_assert_eq(rule.version, 7);
    rk_rule_free(&rule);
    cJSON_Delete(canon);
    cJSON_Delete(errors);

    assert_refused("{" BASE ",\"match\":{\"methods\":[\"FETCH\"]}}", "match.methods[0]");
    assert_refused("{" BASE ",\"match\":{\"path\":\"api/*\"}}", "match.path");
    assert_refused("{" BASE ",\"match\":{\"path\":\"/a*b\"}}", "match.path");
    assert_refused("{" BASE ",\"match\":{\"hosts\":[\"example.com:8080\"]}}", "match.hosts[0]");
    assert_refused("{" BASE ",\"match\":{\"headers\":{\"X-Env\":5}}}", "match.headers.X-Env");
    assert_refused("{" BASE ",\"match\":{\"headers\":{\"X-Env\":\"a\",\"x-env\":\"b\"}}}",
                   "match.headers.x-env");
    assert_refused("{" BASE ",\"match\":[]}", "match");
}

Test(rule_validation, plans_use_the_same_bounds) {
    assert_refused("{" BASE ",\"plans\":{\"pro\":{\"limit\":0}}}", "plans.pro.limit");
    assert_refused("{" BASE ",\"plans\":{\"pro\":{\"window\":\"2w\"}}}", "plans.pro.window");
    assert_refused("{" TB_BASE ",\"plans\":{\"pro\":{\"burst\":-1}}}", "plans.pro.burst");
    assert_refused("{" BASE ",\"plans\":{\"p r o\":{}}}", "plans.p r o");
    assert_refused("{" BASE ",\"plans\":[]}", "plans");
}

Test(rule_validation, compiled_rule_resolves_burst_plans_and_key) {
    cJSON *errors;
    cJSON *canon =
        validate("{\"id\":\"api\",\"algorithm\":\"token_bucket\",\"limit\":100,\"window\":\"1m\","
                 "\"mode\":\"shadow\",\"priority\":5,\"fail_mode\":\"closed\",\"key\":[\"user\","
                 "\"ip+route\",\"header:X-Tenant\"],\"plans\":{\"pro\":{\"limit\":1000},"
                 "\"burst\":{\"burst\":7,\"window\":\"1s\"}}}",
                 &errors);
    cr_assert_not_null(canon);
    rk_rule_t rule;
    cr_assert_eq(rk_rule_compile(canon, 3, &rule), RK_OK);
    cr_assert_str_eq(rule.id, "api");
    cr_assert_eq(rule.limit.limit, 100);
    cr_assert_eq(rule.limit.burst, 100, "burst defaults to the limit");
    cr_assert_eq(rule.limit.window_ms, 60000);
    cr_assert_eq(rule.mode, RK_MODE_SHADOW);
    cr_assert_eq(rule.priority, 5);
    cr_assert_eq(rule.fail_mode, RK_FAIL_CLOSED);
    cr_assert_eq(rule.nkey, 3);
    cr_assert_eq(rule.key[0].atoms[0].source, RK_KEY_USER);
    cr_assert_eq(rule.key[1].natoms, 2);
    cr_assert_eq(rule.key[1].atoms[1].source, RK_KEY_ROUTE);
    cr_assert_eq(rule.key[2].atoms[0].source, RK_KEY_HEADER);
    cr_assert_str_eq(rule.key[2].atoms[0].name, "x-tenant", "stored in lower case");

    const rk_plan_t *pro = rk_rule_plan(&rule, "pro");
    cr_assert_not_null(pro);
    cr_assert_eq(pro->limit.limit, 1000);
    cr_assert_eq(pro->limit.burst, 1000, "a default burst follows the plan's limit");
    cr_assert_eq(pro->limit.window_ms, 60000);
    const rk_plan_t *b = rk_rule_plan(&rule, "burst");
    cr_assert_eq(b->limit.limit, 100);
    cr_assert_eq(b->limit.burst, 7);
    cr_assert_eq(b->limit.window_ms, 1000);
    cr_assert_null(rk_rule_plan(&rule, "free"));
    rk_rule_free(&rule);
    cJSON_Delete(canon);
    cJSON_Delete(errors);
}

Test(rule_validation, explicit_burst_and_fail_mode_values) {
    cJSON *errors;
    cJSON *canon = validate("{" TB_BASE ",\"burst\":3,\"fail_mode\":\"local\"}", &errors);
    cr_assert_not_null(canon);
    rk_rule_t rule;
    cr_assert_eq(rk_rule_compile(canon, 1, &rule), RK_OK);
    cr_assert_eq(rule.limit.burst, 3);
    cr_assert_eq(rule.fail_mode, RK_FAIL_LOCAL);
    cr_assert_eq(rule.key[0].atoms[0].source, RK_KEY_IP);
    rk_rule_free(&rule);
    cJSON_Delete(canon);
    cJSON_Delete(errors);
    assert_refused("{" BASE ",\"fail_mode\":\"maybe\"}", "fail_mode");
    assert_accepted("{" BASE ",\"fail_mode\":null,\"burst\":null,\"description\":null}");
}

Test(rule_validation, burst_is_refused_where_the_algorithm_ignores_it) {
    static const char *const ignoring[] = {"fixed_window", "sliding_window", "sliding_log",
                                           "concurrency"};
    for (size_t i = 0; i < sizeof ignoring / sizeof *ignoring; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"id\":\"r\",\"algorithm\":\"%s\",\"limit\":10,\"window_ms\":1000,"
                 "\"burst\":20}",
                 ignoring[i]);
        assert_refused(text, "burst");
        snprintf(text, sizeof text,
                 "{\"id\":\"r\",\"algorithm\":\"%s\",\"limit\":10,\"window_ms\":1000,"
                 "\"plans\":{\"pro\":{\"burst\":20}}}",
                 ignoring[i]);
        assert_refused(text, "plans.pro.burst");
    }
    assert_accepted("{" BASE ",\"burst\":null,\"plans\":{\"pro\":{\"burst\":null}}}");
    assert_accepted("{\"id\":\"r\",\"algorithm\":\"gcra\",\"limit\":1,\"window_ms\":1,"
                    "\"burst\":5}");
    assert_accepted("{\"id\":\"r\",\"algorithm\":\"leaky_bucket\",\"limit\":1,"
                    "\"window_ms\":1,\"burst\":5,\"plans\":{\"pro\":{\"burst\":9}}}");
}

Test(rule_validation, a_stored_burst_the_algorithm_ignores_is_dropped_not_refused) {
    cJSON *doc = cJSON_Parse("{" BASE ",\"burst\":20,\"plans\":{\"pro\":{\"limit\":5,"
                             "\"burst\":9}}}");
    rk_rule_drop_ignored_burst(doc);
    cJSON *errors = cJSON_CreateArray();
    cJSON *canon = rk_rule_canonical(doc, errors);
    cr_assert_not_null(canon);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(canon, "burst")));
    const cJSON *pro = cJSON_GetObjectItem(cJSON_GetObjectItem(canon, "plans"), "pro");
    cr_assert_null(cJSON_GetObjectItem(pro, "burst"));
    cr_assert_eq(cJSON_GetObjectItem(pro, "limit")->valueint, 5);
    cJSON_Delete(canon);
    cJSON_Delete(doc);
    /* where the algorithm uses it, it is kept */
    doc = cJSON_Parse("{" TB_BASE ",\"burst\":20}");
    rk_rule_drop_ignored_burst(doc);
    cr_assert_eq(cJSON_GetObjectItem(doc, "burst")->valueint, 20);
    cJSON_Delete(doc);
    cJSON_Delete(errors);
}

Test(rule_validation, description_is_bounded) {
    char text[2048];
    char desc[1100];
    memset(desc, 'a', 1025);
    desc[1025] = '\0';
    snprintf(text, sizeof text, "{" BASE ",\"description\":\"%s\"}", desc);
    assert_refused(text, "description");
    desc[1024] = '\0';
    snprintf(text, sizeof text, "{" BASE ",\"description\":\"%s\"}", desc);
    assert_accepted(text);
}

Test(rule_validation, a_non_object_is_refused) {
    assert_refused("[1,2]", "");
    assert_refused("\"rule\"", "");
}
