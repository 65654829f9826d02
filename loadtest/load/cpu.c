/*
 * cpu.c — see cpu.h.
 */
#include "cpu.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* utime + stime of one process, in clock ticks; -1 when unreadable. */
static long long process_ticks(int pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* The command name, in parentheses, may hold spaces and ')': the
     * fields are counted from the last ')'. utime and stime are fields 14
     * and 15 of the line, the 12th and 13th after it. */
    const char *p = strrchr(text, ')');
    unsigned long long utime, stime;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

double lt_cpu_seconds(const lt_pids_t *pids) {
    long long ticks = 0;
    if (pids->n == 0)
        return -1;
    for (int i = 0; i < pids->n; i++) {
        long long t = process_ticks(pids->pids[i]);
        if (t < 0)
            return -1;
        ticks += t;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}
