/*
 * log.c — see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static int log_format = RK_LOG_TEXT;
static rk_log_level_t log_level = RK_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rk_log_init(int format, rk_log_level_t level) {
    log_format = format;
    log_level = level;
}

bool rk_log_enabled(rk_log_level_t level) {
    return level >= log_level;
}

/* Writes s as the inside of a JSON string. */
static void put_json_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void emit(rk_log_level_t level, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char when[32];
    int64_t now = rk_now_ms();
    rk_format_time(now, when);
    flockfile(stderr);
    if (log_format == RK_LOG_JSON) {
        /* "2026-11-22T10:00:00Z" -> "2026-11-22T10:00:00.123Z" */
        when[19] = '\0';
        fprintf(stderr, "{\"time\":\"%s.%03dZ\",\"level\":\"%s\",\"message\":\"", when,
                (int)(now % 1000), level_names[level]);
        put_json_escaped(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s %s\n", when, level_names[level], msg);
    }
    funlockfile(stderr);
    fflush(stderr);
}

void rk_log(rk_log_level_t level, const char *fmt, ...) {
    if (!rk_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
}

void rk_log_always(rk_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
}
