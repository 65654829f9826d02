/*
 * exact.c — exactness mode. Each process is a closed-loop run with its own
 * share of the request budget; it reports its totals to the parent through
 * a pipe, and the parent adds them up. Processes rather than threads, so
 * that the clients are as independent as separate machines would be.
 */
#include "exact.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "report.h"

/* One child: runs its share and writes its totals to fd; never returns. */
static void child_main(const lt_options_t *parent, long share, int fd) {
    lt_options_t o = *parent;
    o.requests = share;
    o.quiet = true;
    o.json_path = NULL;
    if (o.connections > share)
        o.connections = (int)share;
    if (o.threads > o.connections)
        o.threads = o.connections;
    lt_run_t run;
    lt_totals_t t;
    memset(&t, 0, sizeof t);
    int rc = 1;
    if (lt_run_start(&run, &o) == 0) {
        lt_run_join(&run);
        lt_run_totals(&run, &t);
        lt_run_free(&run);
        rc = 0;
    }
    ssize_t n = write(fd, &t, sizeof t);
    close(fd);
    _exit(rc == 0 && n == (ssize_t)sizeof t ? 0 : 1);
}

/* Reads exactly len bytes; false on a short read. */
static bool read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Appends one reason, "; "-separated, to why[cap]. */
static void add_reason(char *why, size_t cap, const char *reason) {
    size_t len = strlen(why);
    snprintf(why + len, cap - len, "%s%s", len ? "; " : "", reason);
}

/*
 * Why the run is not exact, in words, into why[cap]; "" when it is. Only
 * the limiter's verdicts count: every request answered, each answer a 2xx
 * that says allowed or denied, and exactly the limit allowed. A 5xx or an
 * undecided answer is no verdict, however many were allowed.
 */
static void explain(const lt_options_t *o, const lt_totals_t *t, bool complete, char *why,
                    size_t cap) {
    char reason[160];
    uint64_t not_2xx = t->completed - t->status_2xx;
    uint64_t decided = t->allowed + t->denied;
    why[0] = '\0';
    if (!complete)
        add_reason(why, cap, "a client process failed");
    if (t->errors) {
        snprintf(reason, sizeof reason, "%" PRIu64 " requests failed or got no answer", t->errors);
        add_reason(why, cap, reason);
    }
    if (t->completed != (uint64_t)o->requests) {
        snprintf(reason, sizeof reason, "%" PRIu64 " of %ld requests were answered", t->completed,
                 o->requests);
        add_reason(why, cap, reason);
    }
    if (not_2xx) {
        snprintf(reason, sizeof reason,
                 "%" PRIu64 " answers were not 2xx (4xx %" PRIu64 ", 5xx %" PRIu64
                 ", other %" PRIu64 ")",
                 not_2xx, t->status_4xx, t->status_5xx, t->status_other);
        add_reason(why, cap, reason);
    }
    if (decided < t->completed) {
        snprintf(reason, sizeof reason, "%" PRIu64 " answers said neither allowed nor denied",
                 t->completed - decided);
        add_reason(why, cap, reason);
    }
    if (t->allowed != (uint64_t)o->exact_limit) {
        snprintf(reason, sizeof reason, "%" PRIu64 " allowed where the limit is %ld", t->allowed,
                 o->exact_limit);
        add_reason(why, cap, reason);
    }
}

int lt_exact_run(const lt_options_t *o) {
    int fds[64][2];
    pid_t pids[64];
    int procs = o->procs;
    if (procs > o->requests)
        procs = (int)o->requests;
    fflush(stdout);
    fflush(stderr);
    for (int p = 0; p < procs; p++) {
        long share = o->requests / procs + (p < o->requests % procs);
        if (pipe(fds[p]) != 0) {
            perror("ratekit-load: pipe");
            return 1;
        }
        pids[p] = fork();
        if (pids[p] < 0) {
            perror("ratekit-load: fork");
            return 1;
        }
        if (pids[p] == 0) {
            for (int q = 0; q <= p; q++)
                close(fds[q][0]);
            child_main(o, share, fds[p][1]);
        }
        close(fds[p][1]);
    }
    lt_totals_t sum;
    memset(&sum, 0, sizeof sum);
    sum.cpu_s = sum.store_cpu_s = -1; /* not measured in exactness mode */
    bool complete = true;
    for (int p = 0; p < procs; p++) {
        lt_totals_t t;
        if (!read_all(fds[p][0], &t, sizeof t))
            complete = false;
        else {
            sum.completed += t.completed;
            sum.status_2xx += t.status_2xx;
            sum.status_4xx += t.status_4xx;
            sum.status_5xx += t.status_5xx;
            sum.status_other += t.status_other;
            sum.errors += t.errors;
            sum.unanswered += t.unanswered;
            sum.allowed += t.allowed;
            sum.denied += t.denied;
            sum.reconnects += t.reconnects;
            if (t.elapsed_s > sum.elapsed_s)
                sum.elapsed_s = t.elapsed_s;
            if (t.max > sum.max)
                sum.max = t.max;
        }
        close(fds[p][0]);
        int status = 0;
        waitpid(pids[p], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            complete = false;
    }
    sum.throughput = sum.elapsed_s > 0 ? (double)sum.completed / sum.elapsed_s : 0;
    char why[512];
    explain(o, &sum, complete, why, sizeof why);
    lt_options_t shown = *o;
    shown.procs = procs;
    lt_report_exact(stdout, &shown, &sum, o->requests, why);
    return why[0] ? 1 : 0;
}
