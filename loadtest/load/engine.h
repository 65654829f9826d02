/*
 * engine.h — the load loop: worker threads, each with its own epoll and its
 * share of the keep-alive connections, sending requests closed loop (the
 * next when an answer arrives) or open loop (the i-th at t0 + i/rate, its
 * latency counted from that intended time, so a slow server cannot hide
 * its queue: no coordinated omission).
 */
#ifndef LT_ENGINE_H
#define LT_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "histogram.h"
#include "keys.h"
#include "options.h"

/* Counters of one worker, written by it alone, readable by any thread; all
 * but `answered` count events inside the measured window only. */
typedef struct {
    lt_hist_t hist; /* latency of measured answers (open loop: and of waiting_at_end), µs */
    _Atomic uint64_t answered;  /* every answer, warm-up included */
    _Atomic uint64_t completed; /* answers within the measured window */
    _Atomic uint64_t status_2xx, status_4xx, status_5xx, status_other;
    _Atomic uint64_t errors; /* requests lost to a failed or refused connection, or unanswered */
    _Atomic uint64_t unanswered;     /* requests with no answer 1 s after the window (in errors) */
    _Atomic uint64_t waiting_at_end; /* open loop: due, unanswered at the window's end */
    _Atomic uint64_t allowed, denied;
    _Atomic uint64_t released;        /* lease target: releases that ended a live lease */
    _Atomic uint64_t released_at_end; /* lease target: leases released after the window */
    _Atomic uint64_t leases_left;     /* lease target: leases that may still be held after it */
    _Atomic uint64_t reconnects;      /* connections the server closed and we reopened */
} lt_stats_t;

/* Everything measured, summed over workers. */
typedef struct {
    double elapsed_s; /* length of the measured window */
    uint64_t completed, status_2xx, status_4xx, status_5xx, status_other, errors, unanswered;
    uint64_t allowed, denied, released, reconnects, released_at_end, leases_left;
    uint64_t waiting_at_end;           /* open loop: in the percentiles, with their wait so far */
    double throughput;                 /* completed / elapsed_s */
    double scheduled;                  /* open loop: requests due in the window (rate * elapsed) */
    uint64_t p50, p90, p99, p999, max; /* µs */
    double mean_us;
    double cpu_s; /* --cpu-of: their CPU seconds in the measured window; -1 when not measured */
    double store_cpu_s; /* --store-cpu-of: the same */
} lt_totals_t;

typedef struct lt_worker lt_worker_t;

typedef struct {
    const lt_options_t *opts;
    lt_keys_t keys;
    int64_t t0_ns, measure_ns, end_ns; /* CLOCK_MONOTONIC */
    int64_t finished_ns;               /* the measured window's end: end_ns, or with --requests the
                                        * last answer's time (set by lt_run_join) */
    _Atomic long budget;               /* requests left to send, with --requests */
    _Atomic int running;               /* workers still running */
    int nworkers;
    lt_worker_t *workers;
} lt_run_t;

/* Nanoseconds of CLOCK_MONOTONIC. */
int64_t lt_now_ns(void);

/*
 * Starts the workers of one run of o (which must outlive the run). Returns
 * 0, or -1 with a message on stderr.
 */
int lt_run_start(lt_run_t *run, const lt_options_t *o);

/* Whether workers are still running. */
int lt_run_active(lt_run_t *run);

/* Sums the measured counters so far (also while running) into t. */
void lt_run_totals(const lt_run_t *run, lt_totals_t *t);

/* Every answer so far, warm-up included (for the progress line). */
uint64_t lt_run_answered(const lt_run_t *run);

/* Waits for every worker to stop. */
void lt_run_join(lt_run_t *run);

/* Frees what the run holds (after lt_run_join). */
void lt_run_free(lt_run_t *run);

#endif
