/*
 * listen.h — the address a listener's threads share. Each thread's daemon
 * has its own listening socket on it (SO_REUSEPORT), so that the kernel
 * spreads new connections over the threads: with one socket shared,
 * libmicrohttpd's thread that wakes first accepts up to ten connections in
 * a row, and a client opening its connections at once could find them all
 * on one thread while the others idle.
 */
#ifndef RK_LISTEN_H
#define RK_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Whether another socket holds addr (port 0: never). The threads' sockets
 * let each other share the port; this check, on a socket that shares
 * nothing, keeps a second process from joining them.
 */
bool rk_address_in_use(const struct sockaddr *addr, size_t addrlen);

/* Sets the port of an IPv4 or IPv6 address. */
void rk_address_set_port(struct sockaddr *addr, unsigned port);

#endif
