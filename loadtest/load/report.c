/*
 * report.c — tables and JSON. Latencies are in microseconds throughout.
 */
#include "report.h"

#include <inttypes.h>

static const char *mode_name(const lt_options_t *o) {
    return o->rate > 0 ? "open" : "closed";
}

void lt_report_progress(const lt_options_t *o, double since_start_s, bool warming_up, double rate,
                        const lt_totals_t *t) {
    if (warming_up) {
        fprintf(stderr, "[%5.1f s] warm-up  %9.0f req/s\n", since_start_s, rate);
        return;
    }
    fprintf(stderr,
            "[%5.1f s] %9.0f req/s  p99 %6" PRIu64 " us  2xx %" PRIu64 "  4xx %" PRIu64
            "  5xx %" PRIu64 "  errors %" PRIu64 "%s\n",
            since_start_s, rate, t->p99, t->status_2xx, t->status_4xx, t->status_5xx, t->errors,
            o->rate > 0 && rate < 0.95 * o->rate ? "  (behind schedule)" : "");
}

/* What the run asked, in one line. */
static void describe_target(FILE *out, const lt_options_t *o) {
    fprintf(out, "%s", o->urls[0].text);
    for (int i = 1; i < o->nurls; i++)
        fprintf(out, ", %s", o->urls[i].text);
    fprintf(out, "  %s", lt_target_name(o->target));
    if (o->target == LT_TARGET_CHECK || o->target == LT_TARGET_LEASE)
        fprintf(out, " rule=%s", o->rule);
    if (o->target == LT_TARGET_CONTEXT || o->target == LT_TARGET_AUTH)
        fprintf(out, " path=%s", o->request_path);
    if (o->key[0] && (o->target == LT_TARGET_CHECK || o->target == LT_TARGET_LEASE))
        fprintf(out, " key=%s", o->key);
    else if (o->target != LT_TARGET_GET)
        fprintf(out, " keys=%ld %s", o->keys, lt_dist_name(o->dist));
    fputc('\n', out);
}

/* "  <label> X us per answer (S s over N process(es))" when measured (--cpu-of, --store-cpu-of). */
static void cpu_line(FILE *out, const char *label, double cpu_s, int procs, uint64_t completed) {
    if (cpu_s >= 0 && completed > 0)
        fprintf(out, "  %s %.2f us per answer (%.2f s over %d process(es))\n", label,
                cpu_s * 1e6 / (double)completed, cpu_s, procs);
}

/* ", "<who>_cpu_s": S, "<who>_cpu_us_per_answer": X" when measured. */
static void cpu_json(FILE *f, const char *who, double cpu_s, uint64_t completed) {
    if (cpu_s >= 0 && completed > 0)
        fprintf(f, ",\n  \"%s_cpu_s\": %.3f, \"%s_cpu_us_per_answer\": %.3f", who, cpu_s, who,
                cpu_s * 1e6 / (double)completed);
}

void lt_report_table(FILE *out, const lt_options_t *o, const lt_totals_t *t) {
    if (o->label)
        fprintf(out, "%s\n", o->label);
    fprintf(out, "  target      ");
    describe_target(out, o);
    fprintf(out, "  load        %s loop, %d connections, %d threads, pipeline %d", mode_name(o),
            o->connections, o->threads, o->pipeline);
    if (o->rate > 0)
        fprintf(out, ", %.0f req/s scheduled", o->rate);
    fprintf(out, ", %.2f s measured after %.1f s warm-up\n", t->elapsed_s, o->warmup_s);
    fprintf(out, "  throughput  %.0f req/s (%" PRIu64 " answers)", t->throughput, t->completed);
    if (o->rate > 0 && t->scheduled > 0)
        fprintf(out, ", %.1f %% of schedule", 100.0 * (double)t->completed / t->scheduled);
    fputc('\n', out);
    fprintf(out,
            "  latency us  p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64
            "  max %" PRIu64 "  mean %.0f%s\n",
            t->p50, t->p90, t->p99, t->p999, t->max, t->mean_us,
            o->rate > 0 ? "  (from intended send times)" : "");
    if (t->waiting_at_end)
        fprintf(out,
                "              with %" PRIu64 " request%s waiting at the end of the window, "
                "counted with the wait so far\n",
                t->waiting_at_end, t->waiting_at_end == 1 ? "" : "s");
    fprintf(out,
            "  status      2xx %" PRIu64 "  4xx %" PRIu64 "  5xx %" PRIu64 "  other %" PRIu64
            "  errors %" PRIu64,
            t->status_2xx, t->status_4xx, t->status_5xx, t->status_other, t->errors);
    if (t->unanswered)
        fprintf(out, " (unanswered %" PRIu64 ")", t->unanswered);
    fprintf(out, "  reconnects %" PRIu64 "\n", t->reconnects);
    cpu_line(out, "server cpu ", t->cpu_s, o->cpu_of.n, t->completed);
    cpu_line(out, "store cpu  ", t->store_cpu_s, o->store_cpu_of.n, t->completed);
    if (o->target != LT_TARGET_GET || t->allowed || t->denied) {
        fprintf(out, "  decisions   allowed %" PRIu64 "  denied %" PRIu64, t->allowed, t->denied);
        if (o->target == LT_TARGET_LEASE)
            fprintf(out, "  released %" PRIu64, t->released);
        fputc('\n', out);
    }
    if (o->target == LT_TARGET_LEASE) {
        fprintf(out, "  leases      released at end %" PRIu64, t->released_at_end);
        if (t->leases_left)
            fprintf(out,
                    ", %" PRIu64 " may still be held (connection broken or no answer): "
                    "they end with the rule's window",
                    t->leases_left);
        fputc('\n', out);
    }
}

/* Writes s as a JSON string: a URL may hold a quote or a backslash. */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Writes the fields every JSON report has (no braces). */
static void json_body(FILE *f, const lt_options_t *o, const lt_totals_t *t) {
    fprintf(f, "  \"label\": ");
    json_string(f, o->label ? o->label : "");
    fprintf(f, ",\n  \"urls\": [");
    for (int i = 0; i < o->nurls; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, o->urls[i].text);
    }
    fprintf(f, "],\n");
    fprintf(f, "  \"target\": \"%s\", \"rule\": ", lt_target_name(o->target));
    json_string(f, o->rule);
    fprintf(f, ", \"keys\": %ld, \"dist\": \"%s\",\n", o->keys, lt_dist_name(o->dist));
    fprintf(f,
            "  \"mode\": \"%s\", \"rate\": %.0f, \"connections\": %d, \"threads\": %d, "
            "\"pipeline\": %d,\n",
            mode_name(o), o->rate, o->connections, o->threads, o->pipeline);
    fprintf(f, "  \"warmup_s\": %.3f, \"elapsed_s\": %.6f,\n", o->warmup_s, t->elapsed_s);
    fprintf(f, "  \"requests\": %" PRIu64 ", \"throughput_rps\": %.1f, \"scheduled\": %.0f,\n",
            t->completed, t->throughput, t->scheduled);
    fprintf(f,
            "  \"latency_us\": {\"p50\": %" PRIu64 ", \"p90\": %" PRIu64 ", \"p99\": %" PRIu64
            ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64 ", \"mean\": %.1f},\n",
            t->p50, t->p90, t->p99, t->p999, t->max, t->mean_us);
    fprintf(f,
            "  \"status\": {\"2xx\": %" PRIu64 ", \"4xx\": %" PRIu64 ", \"5xx\": %" PRIu64
            ", \"other\": %" PRIu64 "},\n",
            t->status_2xx, t->status_4xx, t->status_5xx, t->status_other);
    fprintf(f,
            "  \"errors\": %" PRIu64 ", \"unanswered\": %" PRIu64 ", \"reconnects\": %" PRIu64
            ", \"allowed\": %" PRIu64 ", \"denied\": %" PRIu64 ", \"released\": %" PRIu64,
            t->errors, t->unanswered, t->reconnects, t->allowed, t->denied, t->released);
    fprintf(f, ",\n  \"waiting_at_end\": %" PRIu64, t->waiting_at_end);
    if (o->target == LT_TARGET_LEASE)
        fprintf(f, ", \"released_at_end\": %" PRIu64 ", \"leases_left\": %" PRIu64,
                t->released_at_end, t->leases_left);
    cpu_json(f, "server", t->cpu_s, t->completed);
    cpu_json(f, "store", t->store_cpu_s, t->completed);
}

int lt_report_json(const char *path, const lt_options_t *o, const lt_totals_t *t) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n");
    json_body(f, o, t);
    fprintf(f, "\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

void lt_report_exact(FILE *out, const lt_options_t *o, const lt_totals_t *t, long sent,
                     const char *why) {
    bool exact = !why[0];
    fprintf(out, "exactness  rule=%s key=%s  %d processes over %d URL(s)\n", o->rule, o->key,
            o->procs, o->nurls);
    fprintf(out,
            "  sent %ld  answered %" PRIu64 " (2xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64
            ")  allowed %" PRIu64 "  denied %" PRIu64 "  errors %" PRIu64 "  limit %ld  -> %s\n",
            sent, t->completed, t->status_2xx, t->status_4xx, t->status_5xx, t->allowed, t->denied,
            t->errors, o->exact_limit, exact ? "exact" : "NOT EXACT");
    if (!exact)
        fprintf(out, "  why: %s\n", why);
    if (!o->json_path)
        return;
    FILE *f = fopen(o->json_path, "w");
    if (!f)
        return;
    fprintf(f, "{\n");
    json_body(f, o, t);
    fprintf(f,
            ",\n  \"exact\": {\"limit\": %ld, \"procs\": %d, \"sent\": %ld, \"ok\": %s, "
            "\"why\": \"%s\"}\n}\n",
            o->exact_limit, o->procs, sent, exact ? "true" : "false", why);
    fclose(f);
}
