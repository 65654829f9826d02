/*
 * metrics.c — see metrics.h.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../check/context.h"
#include "../http/server.h"
#include "../runtime.h"
#include "stats.h"
#include "stream.h"

/* Prometheus's name of each field as a decision label. */
static const char *const decision_labels[RK_STAT_FIELDS] = {"allowed", "denied", "shadow_denied",
                                                            "error"};

void rk_prom_label_value(rk_jw_t *w, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            rk_jw_raw(w, "\\\\", 2);
        else if (*s == '"')
            rk_jw_raw(w, "\\\"", 2);
        else if (*s == '\n')
            rk_jw_raw(w, "\\n", 2);
        else
            rk_jw_raw(w, s, 1);
    }
}

static void header(rk_jw_t *w, const char *name, const char *type, const char *help) {
    char line[512];
    int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    rk_jw_raw(w, line, (size_t)n);
}

static void sample_u64(rk_jw_t *w, const char *name, uint64_t v) {
    char line[256];
    int n = snprintf(line, sizeof line, "%s %llu\n", name, (unsigned long long)v);
    rk_jw_raw(w, line, (size_t)n);
}

/* The le label of bucket i: seconds, shortest exact decimal. */
static void bucket_bound(char *out, size_t len, size_t i) {
    if (i == RK_STATS_HIST_BUCKETS) {
        snprintf(out, len, "+Inf");
        return;
    }
    int64_t ns = rk_stats_hist_bounds_ns[i];
    snprintf(out, len, "%lld.%09lld", (long long)(ns / 1000000000), (long long)(ns % 1000000000));
    size_t n = strlen(out);
    while (n > 2 && out[n - 1] == '0' && out[n - 2] != '.')
        out[--n] = '\0';
}

static void render_decisions(rk_jw_t *w, uint64_t (*per_slot)[RK_STAT_FIELDS]) {
    header(w, "ratekit_decisions_total", "counter",
           "Decided checks by rule and decision (error: the store failed and the fail mode "
           "decided).");
    for (size_t slot = 0; slot < RK_STATS_SLOTS; slot++) {
        const char *rule = rk_stats_slot_rule(slot);
        if (!rule)
            continue;
        for (int f = 0; f < RK_STAT_FIELDS; f++) {
            rk_jw_lit(w, "ratekit_decisions_total{rule=\"");
            rk_prom_label_value(w, rule);
            rk_jw_lit(w, "\",decision=\"");
            rk_jw_lit(w, decision_labels[f]);
            /* a slot a deleted rule held starts again at 0 for its new rule */
            uint64_t base = rk_stats_slot_base(slot, f);
            uint64_t v = per_slot[slot][f] > base ? per_slot[slot][f] - base : 0;
            char tail[64];
            int n = snprintf(tail, sizeof tail, "\"} %llu\n", (unsigned long long)v);
            rk_jw_raw(w, tail, (size_t)n);
        }
    }
}

/* Each check (a request, however many rules covered it) once, by its outcome. */
static void render_checks(rk_jw_t *w) {
    uint64_t checks[RK_STAT_FIELDS];
    rk_stats_checks_cumulative(checks);
    header(w, "ratekit_checks_total", "counter",
           "Checks (requests asked about, each once however many rules covered it) by outcome "
           "(denied: an enforcing rule or the denylist refused it; error: the store failed and "
           "the fail mode answered).");
    static const int fields[] = {RK_STAT_ALLOWED, RK_STAT_DENIED, RK_STAT_ERRORS};
    for (size_t i = 0; i < RK_ARRAY_LEN(fields); i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "ratekit_checks_total{decision=\"%s\"} %llu\n",
                         decision_labels[fields[i]], (unsigned long long)checks[fields[i]]);
        rk_jw_raw(w, line, (size_t)n);
    }
}

static void render_latency(rk_jw_t *w, const rk_stats_latency_t *lat) {
    header(w, "ratekit_check_duration_seconds", "histogram",
           "Time to decide one check (a request, or one entry of a batch), store round trip "
           "included.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= RK_STATS_HIST_BUCKETS; i++) {
        cumulative += lat->buckets[i];
        char le[32], line[128];
        bucket_bound(le, sizeof le, i);
        int n =
            snprintf(line, sizeof line, "ratekit_check_duration_seconds_bucket{le=\"%s\"} %llu\n",
                     le, (unsigned long long)cumulative);
        rk_jw_raw(w, line, (size_t)n);
    }
    char line[128];
    int n = snprintf(line, sizeof line, "ratekit_check_duration_seconds_sum %.9f\n",
                     (double)lat->sum_ns / 1e9);
    rk_jw_raw(w, line, (size_t)n);
    sample_u64(w, "ratekit_check_duration_seconds_count", cumulative);
}

static const char *const plane_names[] = {[RK_PLANE_DATA] = "data", [RK_PLANE_ADMIN] = "admin"};

/* One sample of family per plane, labelled by it. */
static void per_plane(rk_jw_t *w, const char *family, const uint64_t *values) {
    char name[96];
    for (size_t p = 0; p < RK_ARRAY_LEN(plane_names); p++) {
        snprintf(name, sizeof name, "%s{plane=\"%s\"}", family, plane_names[p]);
        sample_u64(w, name, values[p]);
    }
}

/* Each plane's open connections, those closed at once at its bound, and
 * those closed for a request too slow to arrive. */
static void render_connections(rk_jw_t *w) {
    uint64_t open[RK_ARRAY_LEN(plane_names)], refused[RK_ARRAY_LEN(plane_names)],
        timed_out[RK_ARRAY_LEN(plane_names)];
    for (size_t p = 0; p < RK_ARRAY_LEN(plane_names); p++) {
        unsigned n;
        rk_listener_connections((rk_plane_t)p, &n, &refused[p], &timed_out[p]);
        open[p] = n;
    }
    header(w, "ratekit_http_connections", "gauge", "Open client connections, per plane.");
    per_plane(w, "ratekit_http_connections", open);
    header(w, "ratekit_http_connections_refused_total", "counter",
           "Connections closed at once because the plane held RATEKIT_MAX_CONNECTIONS.");
    per_plane(w, "ratekit_http_connections_refused_total", refused);
    header(w, "ratekit_http_connections_timed_out_total", "counter",
           "Connections closed because a request was not whole within RATEKIT_IDLE_TIMEOUT_S.");
    per_plane(w, "ratekit_http_connections_timed_out_total", timed_out);
}

void rk_metrics_render(rk_jw_t *w) {
    uint64_t(*per_slot)[RK_STAT_FIELDS] = calloc(RK_STATS_SLOTS, sizeof *per_slot);
    rk_stats_latency_t lat;
    if (!per_slot) {
        w->failed = true;
        return;
    }
    rk_stats_cumulative(per_slot, &lat);
    render_decisions(w, per_slot);
    free(per_slot);
    render_checks(w);
    render_latency(w, &lat);

    header(w, "ratekit_store_errors_total", "counter",
           "Checks whose store failed (decided by the fail mode).");
    sample_u64(w, "ratekit_store_errors_total", lat.store_errors);
    header(w, "ratekit_store_up", "gauge",
           "Whether the store is healthy (0 while /readyz answers 503).");
    sample_u64(w, "ratekit_store_up", rk_rt.store && rk_rt.store->ops->healthy(rk_rt.store));
    header(w, "ratekit_check_rules_dropped_total", "counter",
           "Checks of a request that more rules matched than one check applies (64): the rules "
           "after the 64th by priority were not applied.");
    sample_u64(w, "ratekit_check_rules_dropped_total", rk_context_rules_dropped());
    header(w, "ratekit_check_refunds_total", "counter",
           "Costs given back to rules that allowed a request another rule denied.");
    sample_u64(w, "ratekit_check_refunds_total", rk_check_refunds());
    header(w, "ratekit_check_refunds_failed_total", "counter",
           "Of those, refunds the store failed (the keys keep the cost until their windows pass).");
    sample_u64(w, "ratekit_check_refunds_failed_total", rk_check_refunds_failed());
    header(w, "ratekit_ruleset_version", "gauge", "Version of the rules in force.");
    sample_u64(w, "ratekit_ruleset_version", (uint64_t)rk_ruleset_version(rk_rules_current()));
    header(w, "ratekit_instances", "gauge", "Live ratekitd instances sharing the store.");
    sample_u64(w, "ratekit_instances", (uint64_t)rk_stats_instances());
    /* The embedded store (the fallback when Redis is the store): its bound at work. */
    int64_t keys = rk_rt.fallback ? rk_rt.fallback->ops->key_count(rk_rt.fallback) : 0;
    header(w, "ratekit_memory_keys", "gauge", "Keys held by the embedded in-memory store.");
    sample_u64(w, "ratekit_memory_keys", keys > 0 ? (uint64_t)keys : 0);
    int64_t evicted = rk_rt.fallback ? rk_memory_store_evictions(rk_rt.fallback) : 0;
    header(w, "ratekit_memory_evictions_total", "counter",
           "Live keys the embedded store evicted because it was full (RATEKIT_MEMORY_MAX_KEYS).");
    sample_u64(w, "ratekit_memory_evictions_total", evicted > 0 ? (uint64_t)evicted : 0);
    header(w, "ratekit_sse_clients", "gauge", "Open event streams (/api/v1/stream).");
    sample_u64(w, "ratekit_sse_clients", (uint64_t)rk_stream_clients());
    render_connections(w);
    header(w, "ratekit_violations_dropped_total", "counter",
           "Denials lost from the denial log: queue full or database write failed.");
    sample_u64(w, "ratekit_violations_dropped_total", rk_audit_dropped());
    header(w, "ratekit_build_info", "gauge", "Always 1; the version of ratekitd as a label.");
    rk_jw_lit(w, "ratekit_build_info{version=\"");
    rk_prom_label_value(w, RK_VERSION);
    rk_jw_lit(w, "\"} 1\n");
}
