/*
 * listen.c — see listen.h.
 */
#include "listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

bool rk_address_in_use(const struct sockaddr *addr, size_t addrlen) {
    unsigned port = addr->sa_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)(const void *)addr)->sin6_port)
                        : ntohs(((const struct sockaddr_in *)(const void *)addr)->sin_port);
    if (port == 0)
        return false;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false; /* the listener's own bind reports what is wrong */
    int on = 1;
    /* As libmicrohttpd binds: past connections in TIME_WAIT do not count,
     * and an IPv6 address is IPv6 only. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    bool in_use = bind(fd, addr, (socklen_t)addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return in_use;
}

void rk_address_set_port(struct sockaddr *addr, unsigned port) {
    if (addr->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)addr)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)(void *)addr)->sin_port = htons((uint16_t)port);
}
