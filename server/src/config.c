/*
 * config.c — the table of settings, and its parser.
 *
 * Each row names a setting once: its environment variable (RATEKIT_X), the
 * matching flag (--x, derived from the name), its type, where it lands in
 * rk_config_t, its default, its bounds and its help line. Everything else —
 * --help, defaults, validation, error messages — is derived from the table.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef enum { T_STRING, T_INT, T_ENUM, T_BOOL, T_ADDR } setting_type_t;

typedef struct {
    const char *env;
    setting_type_t type;
    size_t offset;
    size_t size; /* of the char array, for strings */
    const char *def;
    int64_t min, max;            /* T_INT */
    const char *const *choices;  /* T_ENUM: NULL-terminated, index is the value */
    int (*check)(const char *v); /* extra validation for strings; 0 = ok */
    const char *help;
} setting_t;

static const char *const env_choices[] = {"development", "production", NULL};
static const char *const fail_choices[] = {"open", "closed", "local", NULL};
static const char *const log_format_choices[] = {"text", "json", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};

/* A Redis key prefix: letters, digits, '_', '-', '.', 1..64 bytes. */
static int check_prefix(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return -1;
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && *v != '_' && *v != '-' && *v != '.')
            return -1;
    return 0;
}

/* An admin token: empty (generated) or 16..256 printable bytes. */
static int check_token(const char *v) {
    size_t n = strlen(v);
    if (n == 0)
        return 0;
    if (n < 16)
        return -1;
    for (; *v; v++)
        if (*v <= ' ' || *v > '~')
            return -1;
    return 0;
}

static int check_redis_url(const char *v) {
    return (*v == '\0' || strncmp(v, "redis://", 8) == 0) ? 0 : -1;
}

#define F(field) offsetof(rk_config_t, field), sizeof(((rk_config_t *)0)->field)

static const setting_t settings[] = {
    {"RATEKIT_LISTEN", T_ADDR, F(listen), "0.0.0.0:8080", 0, 0, NULL, NULL,
     "data plane address (checks, forward-auth, health)"},
    {"RATEKIT_ADMIN_LISTEN", T_ADDR, F(admin_listen), "127.0.0.1:8081", 0, 0, NULL, NULL,
     "admin plane address (REST API, stream, metrics, dashboard)"},
    {"RATEKIT_REDIS_URL", T_STRING, F(redis_url), "", 0, 0, NULL, check_redis_url,
     "redis://[user:pass@]host:port[/db]; unset: the embedded in-memory store"},
    {"RATEKIT_REDIS_CLUSTER", T_STRING, F(redis_cluster), "", 0, 0, NULL, NULL,
     "host:port,host:port,... seed nodes of a Redis Cluster; a seed may be "
     "redis://[user]:password@host:port, the credentials serving every node"},
    {"RATEKIT_REDIS_CONNECT_TIMEOUT_MS", T_INT, F(redis_connect_timeout_ms), "500", 1, 60000, NULL,
     NULL, "Redis connect timeout in milliseconds"},
    {"RATEKIT_REDIS_TIMEOUT_MS", T_INT, F(redis_timeout_ms), "250", 1, 60000, NULL, NULL,
     "Redis command timeout in milliseconds"},
    {"RATEKIT_DB", T_STRING, F(db), "./ratekit.db", 0, 0, NULL, NULL,
     "SQLite file of rules, history, tokens and violations"},
    {"RATEKIT_ENV", T_ENUM, F(env), "development", 0, 0, env_choices, NULL,
     "production: an unreachable Redis at start is fatal; development: fall back to memory"},
    {"RATEKIT_FAIL_MODE", T_ENUM, F(fail_mode), "local", 0, 0, fail_choices, NULL,
     "when the store fails: open (allow), closed (deny), local (decide in memory)"},
    {"RATEKIT_KEY_PREFIX", T_STRING, F(key_prefix), "ratekit", 0, 0, NULL, check_prefix,
     "namespace of every Redis key"},
    {"RATEKIT_ADMIN_TOKEN", T_STRING, F(admin_token), "", 0, 0, NULL, check_token,
     "admin bearer token, 16+ characters (generated when unset and the admin plane is loopback)"},
    {"RATEKIT_CHECK_TOKEN", T_STRING, F(check_token), "", 0, 0, NULL, check_token,
     "when set, /v1/ checks require it (Authorization: Bearer or X-Ratekit-Token), 16+ chars"},
    {"RATEKIT_TRUSTED_PROXIES", T_STRING, F(trusted_proxies), "127.0.0.0/8,::1/128", 0, 0, NULL,
     NULL, "CIDRs whose X-Forwarded-For/Forwarded entries are believed"},
    {"RATEKIT_LOG_FORMAT", T_ENUM, F(log_format), "text", 0, 0, log_format_choices, NULL,
     "log lines as text or json"},
    {"RATEKIT_LOG_LEVEL", T_ENUM, F(log_level), "info", 0, 0, log_level_choices, NULL,
     "debug, info, warn or error"},
    {"RATEKIT_THREADS", T_INT, F(threads), "0", 0, 256, NULL, NULL,
     "HTTP worker threads per listener; 0: one per core"},
    {"RATEKIT_MEMORY_MAX_KEYS", T_INT, F(memory_max_keys), "1000000", 1000, 1000000000, NULL, NULL,
     "most keys the embedded store holds (expired, then soonest-expiring, go first)"},
    {"RATEKIT_MAX_CONNECTIONS", T_INT, F(max_connections), "10000", 16, 1000000, NULL, NULL,
     "most open client connections per listener"},
    {"RATEKIT_IDLE_TIMEOUT_S", T_INT, F(idle_timeout_s), "30", 1, 3600, NULL, NULL,
     "each request must arrive whole within this many seconds of its connection opening or of "
     "the previous answer (admin plane: its headers), or the connection is closed: a client "
     "that sends nothing, or trickles bytes, cannot hold one"},
    {"RATEKIT_DASHBOARD_DIR", T_STRING, F(dashboard_dir), "", 0, 0, NULL, NULL,
     "built dashboard to serve; unset: dashboard/dist beside the binary or the working dir"},
    {"RATEKIT_ACCESS_LOG", T_BOOL, F(access_log), "0", 0, 0, NULL, NULL,
     "log every check (1) or only admin changes and failures (0)"},
    {"RATEKIT_VIOLATIONS_RETENTION_DAYS", T_INT, F(violations_retention_days), "7", 1, 3650, NULL,
     NULL, "days the denial log keeps a row (older rows are deleted a little at a time)"},
    {"RATEKIT_JWT_SECRET", T_STRING, F(jwt_secret), "", 0, 0, NULL, NULL,
     "HS256 secret: jwt:<claim> key parts count only tokens it verifies"},
    {"RATEKIT_JWT_PUBLIC_KEY", T_STRING, F(jwt_public_key), "", 0, 0, NULL, NULL,
     "RS256/ES256 public key (PEM text or a file path) verifying JWTs"},
    {"RATEKIT_IPV6_PREFIX", T_INT, F(ipv6_prefix), "64", 32, 128, NULL, NULL,
     "IPv6 clients are keyed by this prefix (one subscriber owns a whole /64)"},
};

/* "RATEKIT_ADMIN_LISTEN" -> "admin-listen" */
static void flag_name(const setting_t *s, char *out, size_t outlen) {
    const char *p = s->env + strlen("RATEKIT_");
    size_t i = 0;
    for (; *p && i + 1 < outlen; p++, i++)
        out[i] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    out[i] = '\0';
}

static void print_help(void) {
    printf("ratekitd %s — shared, exact rate limits for any API\n\n"
           "usage: ratekitd [--flag=value ...]\n\n"
           "Every setting is an environment variable or the matching flag (the flag wins):\n\n",
           RK_VERSION);
    for (size_t i = 0; i < RK_ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        char flag[64];
        flag_name(s, flag, sizeof flag);
        printf("  --%-28s %s\n  %-30s %s", flag, s->env, "", s->help);
        if (s->def[0])
            printf(" [default: %s]", s->def);
        printf("\n");
    }
    printf("\n  --help, --version\n");
}

/* Stores text into the setting's field; RK_ERR with a reason when invalid. */
static rk_status_t apply(rk_config_t *cfg, const setting_t *s, const char *text, const char **why) {
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case T_STRING:
    case T_ADDR:
        if (strlen(text) >= s->size) {
            *why = "too long";
            return RK_ERR;
        }
        if (s->type == T_ADDR) {
            struct sockaddr_storage ss;
            size_t len;
            if (rk_parse_listen_addr(text, &ss, &len) != RK_OK) {
                *why = "expected host:port or [ipv6]:port";
                return RK_ERR;
            }
        }
        if (s->check && s->check(text) != 0) {
            *why = "not a valid value";
            return RK_ERR;
        }
        memcpy(field, text, strlen(text) + 1);
        return RK_OK;
    case T_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end || v < s->min || v > s->max) {
            static char reason[96];
            snprintf(reason, sizeof reason, "expected an integer from %lld to %lld",
                     (long long)s->min, (long long)s->max);
            *why = reason;
            return RK_ERR;
        }
        *(int64_t *)(void *)field = v;
        return RK_OK;
    }
    case T_BOOL:
        if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes")) {
            *(bool *)field = true;
        } else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no") || !*text) {
            *(bool *)field = false;
        } else {
            *why = "expected 1 or 0";
            return RK_ERR;
        }
        return RK_OK;
    case T_ENUM:
        for (int i = 0; s->choices[i]; i++) {
            if (!strcmp(text, s->choices[i])) {
                *(int *)(void *)field = i;
                return RK_OK;
            }
        }
        *why = "not one of the accepted values (see --help)";
        return RK_ERR;
    }
    return RK_ERR;
}

/* Whether a setting's value may hold a password or a secret, never to be repeated. */
static bool holds_secret(const setting_t *s) {
    static const char *const secret[] = {"RATEKIT_REDIS_URL", "RATEKIT_REDIS_CLUSTER",
                                         "RATEKIT_ADMIN_TOKEN", "RATEKIT_CHECK_TOKEN",
                                         "RATEKIT_JWT_SECRET"};
    for (size_t i = 0; i < RK_ARRAY_LEN(secret); i++)
        if (strcmp(s->env, secret[i]) == 0)
            return true;
    return false;
}

static void report(const setting_t *s, const char *source, const char *text, const char *why) {
    if (holds_secret(s))
        fprintf(stderr, "ratekitd: %s (%s): %s\n", s->env, source, why);
    else
        fprintf(stderr, "ratekitd: %s=\"%s\" (%s): %s\n", s->env, text, source, why);
}

static const setting_t *find_flag(const char *arg, const char **value) {
    for (size_t i = 0; i < RK_ARRAY_LEN(settings); i++) {
        char flag[64];
        flag_name(&settings[i], flag, sizeof flag);
        size_t n = strlen(flag);
        if (!strncmp(arg, flag, n) && (arg[n] == '=' || arg[n] == '\0')) {
            *value = arg[n] == '=' ? arg + n + 1 : NULL;
            return &settings[i];
        }
    }
    return NULL;
}

rk_config_result_t rk_config_load(rk_config_t *cfg, int argc, char **argv) {
    memset(cfg, 0, sizeof *cfg);
    const char *why = NULL;
    for (size_t i = 0; i < RK_ARRAY_LEN(settings); i++) {
        if (apply(cfg, &settings[i], settings[i].def, &why) != RK_OK) {
            report(&settings[i], "default", settings[i].def, why);
            return RK_CONFIG_EXIT_ERROR;
        }
    }
    for (size_t i = 0; i < RK_ARRAY_LEN(settings); i++) {
        const char *v = getenv(settings[i].env);
        if (v && apply(cfg, &settings[i], v, &why) != RK_OK) {
            report(&settings[i], "environment", v, why);
            return RK_CONFIG_EXIT_ERROR;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help();
            return RK_CONFIG_EXIT_OK;
        }
        if (!strcmp(arg, "--version")) {
            printf("ratekitd %s\n", RK_VERSION);
            return RK_CONFIG_EXIT_OK;
        }
        const char *value = NULL;
        const setting_t *s = strncmp(arg, "--", 2) ? NULL : find_flag(arg + 2, &value);
        if (!s) {
            fprintf(stderr, "ratekitd: unknown argument \"%s\" (see --help)\n", arg);
            return RK_CONFIG_EXIT_ERROR;
        }
        if (!value) {
            if (s->type == T_BOOL) {
                value = "1";
            } else if (a + 1 < argc) {
                value = argv[++a];
            } else {
                report(s, "command line", "", "needs a value");
                return RK_CONFIG_EXIT_ERROR;
            }
        }
        if (apply(cfg, s, value, &why) != RK_OK) {
            report(s, "command line", value, why);
            return RK_CONFIG_EXIT_ERROR;
        }
    }
    return RK_CONFIG_RUN;
}

rk_status_t rk_parse_listen_addr(const char *text, struct sockaddr_storage *out, size_t *len) {
    char host[64];
    const char *port_text;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return RK_ERR;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return RK_ERR;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    char *end;
    long port = strtol(port_text, &end, 10);
    if (end == port_text || *end || port < 0 || port > 65535)
        return RK_ERR;
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return RK_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return RK_OK;
    }
    return RK_ERR;
}

bool rk_addr_is_loopback(const struct sockaddr_storage *addr) {
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    }
    return false;
}
