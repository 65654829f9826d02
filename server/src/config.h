/*
 * config.h — every setting of ratekitd, from one declarative table
 * (config.c): environment variable RATEKIT_X, flag --x, default, bounds
 * and help text. --help and validation come from that table.
 */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include <sys/socket.h>

#include "common.h"

typedef enum { RK_ENV_DEVELOPMENT = 0, RK_ENV_PRODUCTION } rk_env_t;
typedef enum { RK_LOG_TEXT = 0, RK_LOG_JSON } rk_log_format_t;

typedef struct {
    char listen[128];
    char admin_listen[128];
    char redis_url[512];
    char redis_cluster[1024];
    int64_t redis_connect_timeout_ms;
    int64_t redis_timeout_ms;
    char db[1024];
    int env;       /* rk_env_t */
    int fail_mode; /* rk_fail_mode_t, never RK_FAIL_DEFAULT */
    char key_prefix[65];
    char admin_token[257];
    char check_token[257]; /* data plane bearer token; "" means none */
    char trusted_proxies[2048];
    int log_format; /* rk_log_format_t */
    int log_level;  /* rk_log_level_t */
    int64_t threads;
    int64_t memory_max_keys;
    int64_t max_connections;
    int64_t idle_timeout_s;
    char dashboard_dir[1024];
    bool access_log;
    int64_t violations_retention_days;
    char jwt_secret[257];
    char jwt_public_key[4096];
    int64_t ipv6_prefix;
} rk_config_t;

typedef enum { RK_CONFIG_RUN = 0, RK_CONFIG_EXIT_OK, RK_CONFIG_EXIT_ERROR } rk_config_result_t;

/*
 * Fills cfg from defaults, then the environment, then the command line
 * (flags win). --help and --version print and answer RK_CONFIG_EXIT_OK; a bad
 * value prints one line naming the variable and answers
 * RK_CONFIG_EXIT_ERROR.
 */
rk_config_result_t rk_config_load(rk_config_t *cfg, int argc, char **argv);

/* Parses "host:port" or "[v6]:port" into a socket address. */
rk_status_t rk_parse_listen_addr(const char *text, struct sockaddr_storage *out, size_t *len);

/* True when the address is a loopback one (127.0.0.0/8 or ::1). */
bool rk_addr_is_loopback(const struct sockaddr_storage *addr);

#endif
