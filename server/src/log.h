/*
 * log.h — one line per event on stderr, as text for humans or as JSON
 * (RATEKIT_LOG_FORMAT). The check path never logs unless the access log
 * is switched on.
 */
#ifndef RK_LOG_H
#define RK_LOG_H

#include "common.h"

typedef enum { RK_LOG_DEBUG = 0, RK_LOG_INFO, RK_LOG_WARN, RK_LOG_ERROR } rk_log_level_t;

void rk_log_init(int format, rk_log_level_t level);
bool rk_log_enabled(rk_log_level_t level);
void rk_log(rk_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Written whatever the log level (what nobody may miss, as a generated admin token). */
void rk_log_always(rk_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define rk_debug(...) rk_log(RK_LOG_DEBUG, __VA_ARGS__)
#define rk_info(...) rk_log(RK_LOG_INFO, __VA_ARGS__)
#define rk_warn(...) rk_log(RK_LOG_WARN, __VA_ARGS__)
#define rk_error(...) rk_log(RK_LOG_ERROR, __VA_ARGS__)

#endif
