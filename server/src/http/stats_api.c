/*
 * stats_api.c — the admin plane's live statistics: GET /api/v1/stats,
 * /api/v1/stats/timeseries, /api/v1/stats/top, the event stream
 * GET /api/v1/stream, and GET /metrics (Prometheus, no token: the admin
 * plane is loopback unless configured otherwise).
 *
 * Times are epoch seconds. Everything answers from memory (the
 * cluster-wide mirror on Redis), except the top keys on Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/rule.h"
#include "../stats/metrics.h"
#include "../stats/stats.h"
#include "../stats/stats_routes.h"
#include "../stats/stream.h"
#include "http.h"

#define MAX_POINTS 3600
#define TOP_DEFAULT 10
#define TOP_MAX 100

/*
 * Reads the integer query argument name into *out (def when absent);
 * false when present but not an integer within [lo, hi].
 */
static bool query_int(rk_request_t *req, const char *name, int64_t def, int64_t lo, int64_t hi,
                      int64_t *out) {
    const char *v = rk_request_query(req, name);
    *out = def;
    if (!v || !*v)
        return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static enum MHD_Result bad_argument(rk_request_t *req, const char *name, int64_t lo, int64_t hi) {
    return rk_reply_error(req, 400, "invalid_request", "?%s= must be an integer from %lld to %lld",
                          name, (long long)lo, (long long)hi);
}

/* A ?rule= filter: absent or empty is NULL; one no rule could have is refused. */
static bool query_rule(rk_request_t *req, const char **rule) {
    *rule = rk_request_query(req, "rule");
    if (*rule && !**rule)
        *rule = NULL;
    return !*rule || rk_rule_id_valid(*rule);
}

static void add_counts(cJSON *o, const uint64_t n[RK_STAT_FIELDS], int fields) {
    for (int f = 0; f < fields; f++)
        cJSON_AddNumberToObject(o, rk_stat_field_names[f], (double)n[f]);
}

/* The checks' counts under name: {"allowed", "denied", "errors"} (no check is shadow denied). */
static void add_checks(cJSON *o, const char *name, const uint64_t n[RK_STAT_FIELDS]) {
    cJSON *c = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(c, "allowed", (double)n[RK_STAT_ALLOWED]);
    cJSON_AddNumberToObject(c, "denied", (double)n[RK_STAT_DENIED]);
    cJSON_AddNumberToObject(c, "errors", (double)n[RK_STAT_ERRORS]);
}

/*
 * GET /api/v1/stats?window=300: the rules' decisions (totals, per rule) and
 * the checks (each request once) of the last window seconds.
 */
static enum MHD_Result handle_stats(rk_request_t *req) {
    int64_t window;
    if (!query_int(req, "window", 300, 1, RK_RING_SECONDS, &window))
        return bad_argument(req, "window", 1, RK_RING_SECONDS);
    int64_t to = rk_now_ms() / 1000 - 1;
    uint64_t totals[RK_STAT_FIELDS], checks[RK_STAT_FIELDS];
    rk_stats_rule_t *rules;
    size_t n;
    if (rk_stats_window(to - window + 1, to, totals, checks, &rules, &n) != RK_OK)
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "window_s", (double)window);
    cJSON_AddNumberToObject(o, "instances", (double)rk_stats_instances());
    add_counts(cJSON_AddObjectToObject(o, "totals"), totals, RK_STAT_FIELDS);
    add_checks(o, "checks", checks);
    cJSON *list = cJSON_AddArrayToObject(o, "rules");
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rule", rules[i].rule);
        add_counts(r, rules[i].n, RK_STAT_FIELDS);
        cJSON_AddItemToArray(list, r);
    }
    free(rules);
    return rk_reply_json(req, 200, o);
}

/*
 * GET /api/v1/stats/timeseries?rule=&from=&to=&step=: per-step points, oldest
 * first; without ?rule=, each point carries the checks too.
 */
static enum MHD_Result handle_timeseries(rk_request_t *req) {
    const char *rule;
    if (!query_rule(req, &rule))
        return rk_reply_error(req, 400, "invalid_request", "?rule= is not a rule id");
    int64_t now = rk_now_ms() / 1000;
    int64_t to, from, step;
    if (!query_int(req, "to", now - 1, 0, INT32_MAX * 4LL, &to))
        return bad_argument(req, "to", 0, INT32_MAX * 4LL);
    /* the default reaches back 299 s, but never before the epoch (t is at least 0) */
    if (!query_int(req, "from", to >= 299 ? to - 299 : 0, 0, INT32_MAX * 4LL, &from))
        return bad_argument(req, "from", 0, INT32_MAX * 4LL);
    if (!query_int(req, "step", 1, 1, 3600, &step))
        return bad_argument(req, "step", 1, 3600);
    if (from > to)
        return rk_reply_error(req, 400, "invalid_request", "?from= is after ?to=");
    if ((to - from) / step + 1 > MAX_POINTS)
        return rk_reply_error(req, 400, "invalid_request",
                              "At most %d points: widen ?step= or narrow ?from=..?to=", MAX_POINTS);
    size_t points = (size_t)((to - from) / step + 1);
    uint64_t(*series)[RK_STAT_FIELDS] = calloc(points, sizeof *series);
    uint64_t(*checks)[RK_STAT_FIELDS] = rule ? NULL : calloc(points, sizeof *checks);
    if (!series || (!rule && !checks)) {
        free(series);
        free(checks);
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    }
    if (!rk_stats_series(rule, from, to, step, series, checks)) {
        free(series);
        free(checks);
        return rk_reply_error(req, 404, "not_found",
                              "Rule %s has no statistics of its own: more than %d rules counted, "
                              "and its counts are under _other in /api/v1/stats",
                              rule, RK_STATS_MAX_RULES);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step_s", (double)step);
    cJSON *list = cJSON_AddArrayToObject(o, "points");
    for (size_t i = 0; i < points; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "t", (double)(from + (int64_t)i * step));
        add_counts(p, series[i], RK_STAT_SHADOW_DENIED + 1);
        if (checks)
            add_checks(p, "checks", checks[i]);
        cJSON_AddItemToArray(list, p);
    }
    free(series);
    free(checks);
    return rk_reply_json(req, 200, o);
}

/* GET /api/v1/stats/top?rule=&window=&limit=: the most denied keys. */
static enum MHD_Result handle_top(rk_request_t *req) {
    const char *rule;
    if (!query_rule(req, &rule))
        return rk_reply_error(req, 400, "invalid_request", "?rule= is not a rule id");
    int64_t window, limit;
    if (!query_int(req, "window", 300, 1, RK_RING_SECONDS, &window))
        return bad_argument(req, "window", 1, RK_RING_SECONDS);
    if (!query_int(req, "limit", TOP_DEFAULT, 1, TOP_MAX, &limit))
        return bad_argument(req, "limit", 1, TOP_MAX);
    rk_stats_top_t *top = calloc((size_t)limit, sizeof *top);
    if (!top)
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    size_t n;
    if (rk_stats_top(rule, window, top, (size_t)limit, &n) != RK_OK) {
        free(top);
        return rk_reply_error(req, 503, "store_unavailable", "Redis did not answer");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "window_s", (double)window);
    cJSON *list = cJSON_AddArrayToObject(o, "top");
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rule", top[i].rule);
        cJSON_AddStringToObject(r, "key", top[i].key);
        cJSON_AddNumberToObject(r, "denied", (double)top[i].denied);
        cJSON_AddItemToArray(list, r);
    }
    free(top);
    return rk_reply_json(req, 200, o);
}

/* GET /metrics: the Prometheus text exposition. */
static enum MHD_Result handle_metrics(rk_request_t *req) {
    char stack[8192];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_metrics_render(&w);
    if (w.failed) {
        rk_jw_free(&w);
        return rk_reply_error(req, 503, "unavailable", "Out of memory");
    }
    enum MHD_Result r =
        rk_reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", w.buf, w.len);
    rk_jw_free(&w);
    return r;
}

const rk_route_t rk_stats_routes[] = {
    {"GET", "/api/v1/stats", handle_stats, RK_ROLE_VIEWER, false},
    {"GET", "/api/v1/stats/timeseries", handle_timeseries, RK_ROLE_VIEWER, false},
    {"GET", "/api/v1/stats/top", handle_top, RK_ROLE_VIEWER, false},
    {"GET", "/api/v1/stream", rk_stream_handle, RK_ROLE_VIEWER, false},
    {"GET", "/metrics", handle_metrics, RK_ROLE_NONE, false},
};
const size_t rk_stats_routes_len = RK_ARRAY_LEN(rk_stats_routes);
