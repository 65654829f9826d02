/*
 * violations_api.c — GET /api/v1/violations: the denial log, newest
 * first, filtered by ?rule=, ?key=, ?from= and ?to= (epoch seconds,
 * inclusive), paged by an opaque ?cursor= (keyset on the row id), as JSON
 * or, with ?format=csv, as a CSV download.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../stats/stats_routes.h"
#include "http.h"

#define JSON_LIMIT_DEFAULT 50
#define JSON_LIMIT_MAX 1000
#define CSV_LIMIT_DEFAULT 10000
#define CSV_LIMIT_MAX 100000
#define MAX_EPOCH_S 253402300799LL /* 9999-12-31T23:59:59Z */

static bool parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

/* An optional integer argument; false (and a 400 sent) when present and bad. */
static bool arg_i64(rk_request_t *req, const char *name, int64_t lo, int64_t hi, int64_t *out,
                    enum MHD_Result *sent) {
    const char *v = rk_request_query(req, name);
    if (!v || !*v)
        return true;
    if (parse_i64(v, lo, hi, out))
        return true;
    *sent = rk_reply_error(req, 400, "invalid_request", "?%s= must be an integer from %lld to %lld",
                           name, (long long)lo, (long long)hi);
    return false;
}

static const char *arg_str(rk_request_t *req, const char *name) {
    const char *v = rk_request_query(req, name);
    return v && *v ? v : NULL;
}

typedef struct {
    cJSON *list;
    rk_jw_t *csv;
    int64_t last_id;
} page_t;

static const char *mode_name(uint8_t mode) {
    return mode == RK_VIOLATION_SHADOW ? "shadow" : "enforce";
}

static bool add_json_row(void *ctx, const rk_violation_row_t *row) {
    page_t *p = ctx;
    char at[32];
    rk_format_time_ms(row->v.at_ms, at);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)row->id);
    cJSON_AddStringToObject(o, "at", at);
    cJSON_AddStringToObject(o, "rule", row->v.rule);
    cJSON_AddStringToObject(o, "key", row->v.key);
    cJSON_AddStringToObject(o, "mode", mode_name(row->v.mode));
    cJSON_AddNumberToObject(o, "limit", (double)row->v.limit);
    cJSON_AddNumberToObject(o, "cost", (double)row->v.cost);
    cJSON_AddNumberToObject(o, "count", (double)row->v.count);
    cJSON_AddItemToArray(p->list, o);
    p->last_id = row->id;
    return true;
}

static bool add_csv_row(void *ctx, const rk_violation_row_t *row) {
    page_t *p = ctx;
    char num[80], at[32];
    snprintf(num, sizeof num, "%lld", (long long)row->id);
    rk_csv_field(p->csv, num);
    rk_jw_lit(p->csv, ",");
    rk_format_time_ms(row->v.at_ms, at);
    rk_csv_field(p->csv, at);
    rk_jw_lit(p->csv, ",");
    rk_csv_field(p->csv, row->v.rule);
    rk_jw_lit(p->csv, ",");
    rk_csv_field(p->csv, row->v.key);
    rk_jw_lit(p->csv, ",");
    rk_csv_field(p->csv, mode_name(row->v.mode));
    snprintf(num, sizeof num, ",%lld,%lld,%lld\r\n", (long long)row->v.limit,
             (long long)row->v.cost, (long long)row->v.count);
    rk_jw_lit(p->csv, num);
    p->last_id = row->id;
    return !p->csv->failed;
}

static enum MHD_Result handle_violations(rk_request_t *req) {
    const char *format = arg_str(req, "format");
    bool csv = format && !strcmp(format, "csv");
    if (format && !csv && strcmp(format, "json") != 0)
        return rk_reply_error(req, 400, "invalid_request", "?format= must be json or csv");
    enum MHD_Result sent;
    int64_t from_s = -1, to_s = -1, cursor = INT64_MAX;
    int64_t limit = csv ? CSV_LIMIT_DEFAULT : JSON_LIMIT_DEFAULT;
    if (!arg_i64(req, "from", 0, MAX_EPOCH_S, &from_s, &sent) ||
        !arg_i64(req, "to", 0, MAX_EPOCH_S, &to_s, &sent) ||
        !arg_i64(req, "limit", 1, csv ? CSV_LIMIT_MAX : JSON_LIMIT_MAX, &limit, &sent))
        return sent;
    const char *cur = arg_str(req, "cursor");
    if (cur && !parse_i64(cur, 1, INT64_MAX, &cursor))
        return rk_reply_error(req, 400, "invalid_request",
                              "?cursor= must be a next_cursor this API answered");
    rk_violation_query_t q = {.rule = arg_str(req, "rule"),
                              .key = arg_str(req, "key"),
                              .from_ms = from_s >= 0 ? from_s * 1000 : INT64_MIN,
                              .to_ms = to_s >= 0 ? to_s * 1000 + 999 : INT64_MAX,
                              .before_id = cursor,
                              .limit = (size_t)limit};
    char stack[4096];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    page_t page = {.csv = &w};
    cJSON *root = NULL;
    if (csv) {
        rk_jw_lit(&w, "id,at,rule,key,mode,limit,cost,count\r\n");
    } else {
        root = cJSON_CreateObject();
        page.list = cJSON_AddArrayToObject(root, "violations");
    }
    bool more;
    char err[256];
    rk_status_t st =
        rk_audit_query(&q, csv ? add_csv_row : add_json_row, &page, &more, err, sizeof err);
    if (st != RK_OK || w.failed) {
        cJSON_Delete(root);
        rk_jw_free(&w);
        return rk_reply_error(req, 503, "unavailable", "Cannot read the denial log: %s",
                              st != RK_OK ? err : "out of memory");
    }
    char next[32] = "";
    if (more)
        snprintf(next, sizeof next, "%lld", (long long)page.last_id);
    if (!csv) {
        rk_jw_free(&w);
        if (more)
            cJSON_AddStringToObject(root, "next_cursor", next);
        else
            cJSON_AddNullToObject(root, "next_cursor");
        return rk_reply_json(req, 200, root);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(w.len, w.buf, MHD_RESPMEM_MUST_COPY);
    rk_jw_free(&w);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/csv; charset=utf-8");
    MHD_add_response_header(resp, "Content-Disposition", "attachment; filename=\"violations.csv\"");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (more)
        MHD_add_response_header(resp, "X-Next-Cursor", next);
    return rk_reply_response(req, 200, resp);
}

const rk_route_t rk_violations_routes[] = {
    {"GET", "/api/v1/violations", handle_violations, RK_ROLE_VIEWER, false},
};
const size_t rk_violations_routes_len = RK_ARRAY_LEN(rk_violations_routes);
