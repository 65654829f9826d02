/*
 * redis_server.c — see redis_server.h.
 */
#include "redis_server.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
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

static int answers_ping(int port) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        /* A server started with --requirepass answers NOAUTH: it is up too. */
        ok = r && (r->type == REDIS_REPLY_STATUS ||
                   (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0));
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

void rk_test_redis_start(rk_test_redis_t *r, const char *const *extra_args) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/rk-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        cr_fatal("mkdtemp failed");
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
        if (answers_ping(r->port))
            return;
        usleep(20000);
    }
    rk_test_redis_stop(r);
    cr_fatal("redis-server did not start on port %d", r->port);
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
