/*
 * main.c — ratekit-load: parses the command line, runs the load (or the
 * exactness check), prints progress once a second, and reports.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "engine.h"
#include "exact.h"
#include "options.h"
#include "report.h"

/*
 * Whether every URL takes a connection: a server that is not there would
 * otherwise be retried until the time limit (with --requests, for ever).
 * Says which URL does not, and why, on stderr.
 */
static bool servers_listen(const lt_options_t *o) {
    for (int i = 0; i < o->nurls; i++) {
        const lt_url_t *u = &o->urls[i];
        int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = fd < 0 ? -1 : connect(fd, (const struct sockaddr *)&u->addr, u->addrlen);
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (rc != 0) {
            fprintf(stderr, "ratekit-load: cannot connect to %s: %s\n", u->text, strerror(err));
            return false;
        }
    }
    return true;
}

/* Sleeps until when_ns (CLOCK_MONOTONIC), in steps of at most 20 ms, or
 * until the run ends. */
static void wait_until(lt_run_t *run, int64_t when_ns) {
    for (int64_t now; lt_run_active(run) && (now = lt_now_ns()) < when_ns;) {
        int64_t step = when_ns - now < 20000000 ? when_ns - now : 20000000;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    lt_options_t o;
    int rc = lt_options_parse(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    if (!servers_listen(&o))
        return 1;
    if (o.exact_limit > 0)
        return lt_exact_run(&o);
    if (o.cpu_of.n > 0 && lt_cpu_seconds(&o.cpu_of) < 0) {
        fprintf(stderr, "ratekit-load: --cpu-of: no such process\n");
        return 2;
    }
    if (o.store_cpu_of.n > 0 && lt_cpu_seconds(&o.store_cpu_of) < 0) {
        fprintf(stderr, "ratekit-load: --store-cpu-of: no such process\n");
        return 2;
    }

    /* --cpu-of, --store-cpu-of: the processes' CPU time from the measured
     * window's start to the run's end (they idle once the load stops);
     * taken before the workers start when the window opens with them. */
    double cpu_start = -1, store_cpu_start = -1;
    bool cpu_due = o.cpu_of.n > 0 || o.store_cpu_of.n > 0;
    if (cpu_due && o.warmup_s <= 0) {
        cpu_start = lt_cpu_seconds(&o.cpu_of);
        store_cpu_start = lt_cpu_seconds(&o.store_cpu_of);
        cpu_due = false;
    }
    lt_run_t run;
    if (lt_run_start(&run, &o) != 0)
        return 1;
    uint64_t last_answered = 0;
    int64_t tick = run.t0_ns;
    while (lt_run_active(&run)) {
        tick += 1000000000LL;
        if (cpu_due && run.measure_ns <= tick) {
            wait_until(&run, run.measure_ns);
            cpu_start = lt_cpu_seconds(&o.cpu_of);
            store_cpu_start = lt_cpu_seconds(&o.store_cpu_of);
            cpu_due = false;
        }
        wait_until(&run, tick);
        if (!lt_run_active(&run) || o.quiet)
            continue;
        int64_t now = lt_now_ns();
        uint64_t answered = lt_run_answered(&run);
        lt_totals_t t;
        lt_run_totals(&run, &t);
        lt_report_progress(&o, (double)(now - run.t0_ns) / 1e9, now < run.measure_ns,
                           (double)(answered - last_answered), &t);
        last_answered = answered;
    }
    lt_run_join(&run);
    double cpu_end = cpu_start < 0 ? -1 : lt_cpu_seconds(&o.cpu_of);
    double store_cpu_end = store_cpu_start < 0 ? -1 : lt_cpu_seconds(&o.store_cpu_of);
    lt_totals_t t;
    lt_run_totals(&run, &t);
    t.cpu_s = cpu_end < 0 ? -1 : cpu_end - cpu_start;
    t.store_cpu_s = store_cpu_end < 0 ? -1 : store_cpu_end - store_cpu_start;
    if ((o.cpu_of.n > 0 && cpu_end < 0) || (o.store_cpu_of.n > 0 && store_cpu_end < 0))
        fprintf(stderr, "ratekit-load: cannot read the CPU time of a --cpu-of or "
                        "--store-cpu-of process\n");
    lt_run_free(&run);
    lt_report_table(stdout, &o, &t);
    if (o.json_path && lt_report_json(o.json_path, &o, &t) != 0) {
        fprintf(stderr, "ratekit-load: cannot write %s\n", o.json_path);
        return 1;
    }
    return t.completed > 0 ? 0 : 1;
}
