/*
 * cpu.h — the CPU time other processes use (--cpu-of): what the server
 * under load spends per answer, a figure that moves far less with the
 * host's load than throughput does.
 */
#ifndef LT_CPU_H
#define LT_CPU_H

/* User plus system seconds used so far by the n processes (all their
 * threads), from /proc/PID/stat; -1 when one cannot be read. */
double lt_cpu_seconds(const int *pids, int n);

#endif
