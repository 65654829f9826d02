/*
 * report.h — the results of a run: a table on stdout, JSON in a file, and
 * the once-a-second progress line on stderr.
 */
#ifndef LT_REPORT_H
#define LT_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"
#include "options.h"

/* One progress line: seconds since start, rate over the last second, p99 so far. */
void lt_report_progress(const lt_options_t *o, double since_start_s, bool warming_up, double rate,
                        const lt_totals_t *t);

/* The results table. */
void lt_report_table(FILE *out, const lt_options_t *o, const lt_totals_t *t);

/* The results as one JSON object; -1 when the file cannot be written. */
int lt_report_json(const char *path, const lt_options_t *o, const lt_totals_t *t);

/* Exactness mode: the verdict line(s), and JSON when o->json_path is set.
 * why: the reasons the run is not exact, "" when it is. */
void lt_report_exact(FILE *out, const lt_options_t *o, const lt_totals_t *t, long sent,
                     const char *why);

#endif
