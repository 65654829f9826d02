/*
 * routes.h — the route tables of each API area, joined by main.c into the
 * data plane's and the admin plane's routers.
 */
#ifndef RK_ROUTES_H
#define RK_ROUTES_H

#include "http.h"

/* Data plane: /v1/check, /v1/check/batch, /v1/acquire, /v1/release, /healthz, /readyz. */
extern const rk_route_t rk_check_routes[];
extern const size_t rk_check_routes_len;

/* Data plane: GET /v1/auth, forward-auth. */
extern const rk_route_t rk_auth_routes[];
extern const size_t rk_auth_routes_len;

/* Admin plane: /api/v1/info, /api/v1/check (try it), /api/v1/counters. */
extern const rk_route_t rk_admin_routes[];
extern const size_t rk_admin_routes_len;

#endif
