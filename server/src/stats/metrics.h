/*
 * metrics.h — GET /metrics, the Prometheus text exposition (format 0.0.4):
 * decisions per rule and decision, the check-duration histogram, the
 * store's health and errors, checks that dropped rules past their cap,
 * the ruleset version, open event streams,
 * dropped denial-log rows, build info.
 */
#ifndef RK_STATS_METRICS_H
#define RK_STATS_METRICS_H

#include "../http/jsonw.h"

/* Appends the whole exposition to w. */
void rk_metrics_render(rk_jw_t *w);

/* Appends s as a label value: backslash, double quote and newline escaped. */
void rk_prom_label_value(rk_jw_t *w, const char *s);

#endif
