/*
 * redis_server.c — see redis_server.h.
 */
#include "redis_server.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

int rk_test_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        cr_fatal("cannot find a free port");
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The password a server started with these extra arguments asks for, or NULL. */
static const char *password_of(const char *const *extra_args) {
    for (size_t i = 0; extra_args && extra_args[i] && extra_args[i + 1]; i++)
        if (strcmp(extra_args[i], "--requirepass") == 0)
            return extra_args[i + 1];
    return NULL;
}

int rk_test_redis_answers_as(int port, pid_t pid, const char *password) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ours = 0;
    if (c && !c->err) {
        redisReply *a = password ? redisCommand(c, "AUTH %s", password) : NULL;
        redisReply *r = redisCommand(c, "INFO server");
        const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
        ours = at && atol(at + strlen("process_id:")) == (long)pid;
        if (a)
            freeReplyObject(a);
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ours;
}

/* Starts redis-server on a port found free; false when it exited (the port was taken). */
static bool start_on_free_port(rk_test_redis_t *r, const char *const *extra_args) {
    r->port = rk_test_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[64] = {"redis-server", "--port",     port,     "--bind",
                            "127.0.0.1",    "--save",     "",       "--appendonly",
                            "no",           "--dir",      r->dir,   "--daemonize",
                            "no",           "--loglevel", "warning"};
    size_t n = 15;
    for (size_t i = 0; extra_args && extra_args[i] && n < 63; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        if (rk_test_redis_answers_as(r->port, r->pid, password_of(extra_args)))
            return true;
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return false;
        }
        usleep(20000);
    }
    rk_test_redis_stop(r);
    cr_fatal("redis-server did not start on port %d", r->port);
}

void rk_test_redis_start(rk_test_redis_t *r, const char *const *extra_args) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/rk-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        cr_fatal("mkdtemp failed");
    for (int attempt = 0; attempt < 5; attempt++)
        if (start_on_free_port(r, extra_args))
            return;
    rk_test_redis_stop(r);
    cr_fatal("redis-server found no free port in 5 tries");
}

void rk_test_redis_stop(rk_test_redis_t *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (r->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
}

void rk_test_redis_signal(rk_test_redis_t *r, int sig) {
    if (r->pid > 0)
        kill(r->pid, sig);
}
