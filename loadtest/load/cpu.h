/*
 * cpu.h — the CPU time other processes use (--cpu-of, --store-cpu-of):
 * what the server under load, and its store, spend per answer, figures
 * that move far less with the host's load than throughput does.
 */
#ifndef LT_CPU_H
#define LT_CPU_H

#include "options.h"

/* User plus system seconds used so far by the processes (all their
 * threads), from /proc/PID/stat; -1 when one cannot be read or there is none. */
double lt_cpu_seconds(const lt_pids_t *pids);

#endif
