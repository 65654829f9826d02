/*
 * runtime.h — the parts of a running ratekitd that handlers share: its
 * settings and its stores. Written once by main.c before the listeners
 * start, read-only afterwards.
 */
#ifndef RK_RUNTIME_H
#define RK_RUNTIME_H

#include "check/client_ip.h"
#include "check/jwt.h"
#include "config.h"
#include "store/store.h"

typedef struct {
    rk_config_t cfg;
    rk_store_t *store;    /* where counters live: memory or Redis */
    rk_store_t *fallback; /* the in-memory store fail_mode "local" decides in */
    const char *store_kind;
    int64_t started_ms;
    rk_cidr_list_t trusted_proxies;
    rk_jwt_verifier_t *jwt; /* NULL: no JWT is believed */
} rk_runtime_t;

extern rk_runtime_t rk_rt;

#endif
