/*
 * redis_server.h — a real redis-server on a free loopback port, for the
 * store suites. Started by the test, stopped by PID.
 */
#ifndef RK_TEST_REDIS_SERVER_H
#define RK_TEST_REDIS_SERVER_H

#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;
    char dir[256]; /* its working directory, removed on stop */
} rk_test_redis_t;

/* Starts redis-server (extra args appended, NULL-terminated list) and waits
 * until it answers PING. Aborts the test on failure. */
void rk_test_redis_start(rk_test_redis_t *r, const char *const *extra_args);
/* SIGKILLs it, waits for it, removes its directory. */
void rk_test_redis_stop(rk_test_redis_t *r);
/* Sends a signal to it (SIGSTOP/SIGCONT to hang and resume it). */
void rk_test_redis_signal(rk_test_redis_t *r, int sig);
/* A free loopback TCP port. */
int rk_test_free_port(void);
/*
 * Whether the server answering on port is the process pid (password: its
 * --requirepass, or NULL). A port found free may be taken by another test's
 * server before ours binds it: ours then exits, and the other one would
 * answer a mere PING.
 */
int rk_test_redis_answers_as(int port, pid_t pid, const char *password);

#endif
