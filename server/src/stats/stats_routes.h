/*
 * stats_routes.h — the admin plane's observability routes, joined by
 * main.c into the admin router: /api/v1/stats..., /api/v1/stream,
 * /metrics (stats_api.c) and /api/v1/violations (violations_api.c).
 */
#ifndef RK_STATS_ROUTES_H
#define RK_STATS_ROUTES_H

#include "../http/http.h"

extern const rk_route_t rk_stats_routes[];
extern const size_t rk_stats_routes_len;

extern const rk_route_t rk_violations_routes[];
extern const size_t rk_violations_routes_len;

#endif
