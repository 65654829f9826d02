/*
 * main.c — start-up, signals, shutdown; nothing else.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/tokens.h"
#include "config.h"
#include "http/delay.h"
#include "http/routes.h"
#include "http/server.h"
#include "lists/lists.h"
#include "log.h"
#include "rules/rules.h"
#include "rules/sync.h"
#include "runtime.h"
#include "stats/stats.h"
#include "stats/stats_routes.h"

/* The admin token in force (from RATEKIT_ADMIN_TOKEN, or generated). */
static char admin_token[257];

/*
 * Settles the admin token: the configured one, or — only when the admin
 * listener is loopback-only — a fresh random one, printed at start.
 * RK_ERR when none is configured and the admin plane is reachable.
 */
static rk_status_t settle_admin_token(const rk_config_t *cfg, bool *generated) {
    *generated = false;
    if (cfg->admin_token[0]) {
        snprintf(admin_token, sizeof admin_token, "%s", cfg->admin_token);
        return RK_OK;
    }
    struct sockaddr_storage addr;
    size_t len;
    if (rk_parse_listen_addr(cfg->admin_listen, &addr, &len) != RK_OK ||
        !rk_addr_is_loopback(&addr)) {
        fprintf(stderr,
                "ratekitd: RATEKIT_ADMIN_TOKEN is required when the admin listener (%s) "
                "is not loopback-only\n",
                cfg->admin_listen);
        return RK_ERR;
    }
    unsigned char raw[24];
    if (rk_random_bytes(raw, sizeof raw) != RK_OK)
        return RK_ERR;
    rk_hex(raw, sizeof raw, admin_token);
    *generated = true;
    return RK_OK;
}

/* Parses the trusted proxies and loads the JWT key; one line naming the setting on error. */
static rk_status_t prepare_identity(const rk_config_t *cfg) {
    char err[256];
    if (rk_cidr_list_parse(cfg->trusted_proxies, &rk_rt.trusted_proxies, err, sizeof err) !=
        RK_OK) {
        fprintf(stderr, "ratekitd: RATEKIT_TRUSTED_PROXIES=\"%s\": %s\n", cfg->trusted_proxies,
                err);
        return RK_ERR;
    }
    if (cfg->jwt_secret[0] || cfg->jwt_public_key[0]) {
        rk_rt.jwt = rk_jwt_verifier_new(cfg->jwt_secret, cfg->jwt_public_key, err, sizeof err);
        if (!rk_rt.jwt) {
            fprintf(stderr, "ratekitd: %s\n", err);
            rk_cidr_list_free(&rk_rt.trusted_proxies);
            return RK_ERR;
        }
    }
    return RK_OK;
}

/* Raises the open-file limit to its hard maximum: every client is a socket. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * Opens the Redis Cluster store of RATEKIT_REDIS_CLUSTER and fetches its
 * slot map; the same start-up rules as a single Redis (see open_stores).
 */
static rk_status_t open_cluster_store(const rk_config_t *cfg) {
    char err[512];
    rk_redis_cluster_config_t rc = {cfg->redis_cluster, cfg->redis_connect_timeout_ms,
                                    cfg->redis_timeout_ms, cfg->key_prefix, NULL};
    rk_store_t *cluster = rk_redis_cluster_store_new(&rc, err, sizeof err);
    if (!cluster) {
        /* Not the value: a seed may carry a password. */
        fprintf(stderr, "ratekitd: RATEKIT_REDIS_CLUSTER: %s\n", err);
        return RK_ERR;
    }
    if (rk_redis_cluster_store_ping(cluster, err, sizeof err) != RK_OK) {
        if (cfg->env == RK_ENV_PRODUCTION) {
            fprintf(stderr,
                    "ratekitd: RATEKIT_REDIS_CLUSTER: the Redis Cluster is unreachable (%s); "
                    "RATEKIT_ENV=production refuses to start without it\n",
                    err);
            cluster->ops->destroy(cluster);
            return RK_ERR;
        }
        rk_warn("the Redis Cluster is unreachable (%s): checks use the fail mode until it "
                "answers (development; production would refuse to start)",
                err);
    }
    rk_rt.store = cluster;
    rk_rt.store_kind = "redis-cluster";
    return RK_OK;
}

/*
 * Opens the stores: the in-memory one always (the default, and the fallback
 * of fail_mode "local"), and Redis when RATEKIT_REDIS_URL (or a Redis Cluster
 * when RATEKIT_REDIS_CLUSTER) is set. An
 * unreachable Redis at start is fatal in production; in development ratekitd
 * goes on with the in-memory store and says so.
 */
static rk_status_t open_stores(const rk_config_t *cfg) {
    rk_rt.fallback = rk_memory_store_new((size_t)cfg->memory_max_keys);
    if (!rk_rt.fallback) {
        rk_error("cannot allocate the in-memory store");
        return RK_ERR;
    }
    rk_rt.store = rk_rt.fallback;
    rk_rt.store_kind = "memory";
    if (cfg->redis_url[0] && cfg->redis_cluster[0]) {
        fprintf(stderr, "ratekitd: RATEKIT_REDIS_CLUSTER: set either it or RATEKIT_REDIS_URL, "
                        "not both\n");
        return RK_ERR;
    }
    if (cfg->redis_cluster[0])
        return open_cluster_store(cfg);
    if (!cfg->redis_url[0])
        return RK_OK;
    char err[256];
    rk_redis_config_t rc = {cfg->redis_url, cfg->redis_connect_timeout_ms, cfg->redis_timeout_ms,
                            cfg->key_prefix, NULL};
    rk_store_t *redis = rk_redis_store_new(&rc, err, sizeof err);
    if (!redis) {
        fprintf(stderr, "ratekitd: RATEKIT_REDIS_URL: %s\n", err);
        return RK_ERR;
    }
    if (rk_redis_store_ping(redis, err, sizeof err) != RK_OK) {
        if (cfg->env == RK_ENV_PRODUCTION) {
            fprintf(stderr,
                    "ratekitd: RATEKIT_REDIS_URL: Redis is unreachable (%s); "
                    "RATEKIT_ENV=production refuses to start without it\n",
                    err);
            redis->ops->destroy(redis);
            return RK_ERR;
        }
        rk_warn("Redis is unreachable (%s): checks use the fail mode until it answers "
                "(development; production would refuse to start)",
                err);
    }
    rk_rt.store = redis;
    rk_rt.store_kind = "redis";
    return RK_OK;
}

static void print_banner(const rk_config_t *cfg, unsigned data_port, unsigned admin_port,
                         bool generated) {
    char host[128];
    snprintf(host, sizeof host, "%s", cfg->admin_listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
        snprintf(host, sizeof host, "127.0.0.1");
    rk_info("ratekitd %s ready: store %s, %zu rules", RK_VERSION, rk_rt.store_kind,
            rk_ruleset_count(rk_rules_current()));
    rk_info("data plane  : %s (port %u)", cfg->listen, data_port);
    if (!generated) {
        rk_info("dashboard   : http://%s:%u/", host, admin_port);
        return;
    }
    /* A generated token is said whatever the log level (as a warning where
     * info is not shown): without it, nobody can sign in. */
    rk_log_level_t level = rk_log_enabled(RK_LOG_INFO) ? RK_LOG_INFO : RK_LOG_WARN;
    rk_log_always(level, "dashboard   : http://%s:%u/", host, admin_port);
    rk_log_always(level, "admin token : %s (generated; set RATEKIT_ADMIN_TOKEN to keep one)",
                  admin_token);
}

/*
 * Where the dashboard's files are: RATEKIT_DASHBOARD_DIR, else dashboard/dist
 * in the working directory, else beside the binary (build/../dashboard/dist).
 */
static void find_dashboard(const rk_config_t *cfg, char *out, size_t cap) {
    if (cfg->dashboard_dir[0]) {
        snprintf(out, cap, "%s", cfg->dashboard_dir);
        return;
    }
    snprintf(out, cap, "dashboard/dist");
    if (access("dashboard/dist/index.html", R_OK) == 0)
        return;
    char exe[900];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    char candidate[1100];
    snprintf(candidate, sizeof candidate, "%s/../dashboard/dist", exe);
    char index[1200];
    snprintf(index, sizeof index, "%s/index.html", candidate);
    if (access(index, R_OK) == 0)
        snprintf(out, cap, "%s", candidate);
}

/* Frees what start-up made, whatever point it reached. */
static void release_runtime(void) {
    rk_stats_stop();
    rk_audit_stop();
    rk_rules_sync_stop();
    rk_tokens_close();
    rk_lists_close();
    rk_rules_close();
    if (rk_rt.store && rk_rt.store != rk_rt.fallback)
        rk_rt.store->ops->destroy(rk_rt.store);
    if (rk_rt.fallback)
        rk_rt.fallback->ops->destroy(rk_rt.fallback);
    rk_rt.store = rk_rt.fallback = NULL;
    rk_jwt_verifier_free(rk_rt.jwt);
    rk_rt.jwt = NULL;
    rk_cidr_list_free(&rk_rt.trusted_proxies);
}

/*
 * Opens the rules and the stores, starts both listeners, and waits for
 * SIGTERM or SIGINT; then stops accepting, answers delayed requests at
 * once, and lets in-flight ones finish. Returns the exit code.
 */
static int serve(const rk_config_t *cfg, sigset_t *stop_signals, bool generated) {
    char err[512];
    if (rk_rules_open(cfg->db, err, sizeof err) != RK_OK) {
        fprintf(stderr, "ratekitd: RATEKIT_DB=\"%s\": %s\n", cfg->db, err);
        return 1;
    }
    if (rk_lists_open(cfg->db, err, sizeof err) != RK_OK) {
        fprintf(stderr, "ratekitd: RATEKIT_DB=\"%s\": %s\n", cfg->db, err);
        return 1;
    }
    if (rk_tokens_open(cfg->db, err, sizeof err) != RK_OK) {
        fprintf(stderr, "ratekitd: RATEKIT_DB=\"%s\": %s\n", cfg->db, err);
        return 1;
    }
    if (open_stores(cfg) != RK_OK || rk_rules_start_reload() != RK_OK || rk_delay_start() != RK_OK)
        return 1;
    if (cfg->redis_url[0] && rk_rules_sync_start(cfg->redis_url, cfg->key_prefix) != RK_OK)
        return 1;
    if (cfg->redis_cluster[0] && rk_rt.store != rk_rt.fallback &&
        rk_rules_sync_start_cluster(rk_rt.store, cfg->key_prefix) != RK_OK)
        return 1;
    if (rk_stats_start() != RK_OK)
        return 1;
    if (rk_audit_start(cfg->db, rk_stats_instance_id(), cfg->violations_retention_days, err,
                       sizeof err) != RK_OK) {
        fprintf(stderr, "ratekitd: RATEKIT_DB=\"%s\": %s\n", cfg->db, err);
        return 1;
    }
    const rk_route_table_t data_tables[] = {{rk_check_routes, rk_check_routes_len},
                                            {rk_auth_routes, rk_auth_routes_len}};
    const rk_route_table_t admin_tables[] = {
        {rk_rules_routes, rk_rules_routes_len},           {rk_admin_routes, rk_admin_routes_len},
        {rk_lists_routes, rk_lists_routes_len},           {rk_tokens_routes, rk_tokens_routes_len},
        {rk_overrides_routes, rk_overrides_routes_len},   {rk_stats_routes, rk_stats_routes_len},
        {rk_violations_routes, rk_violations_routes_len},
    };
    char dashboard[1100];
    find_dashboard(cfg, dashboard, sizeof dashboard);
    rk_listener_config_t data_cfg = {.plane = RK_PLANE_DATA,
                                     .address = cfg->listen,
                                     .tables = data_tables,
                                     .ntables = RK_ARRAY_LEN(data_tables),
                                     .threads = (unsigned)cfg->threads,
                                     .max_connections = (unsigned)cfg->max_connections,
                                     .idle_timeout_s = (unsigned)cfg->idle_timeout_s,
                                     .required_token = cfg->check_token,
                                     .event_loops = rk_check_async_available()};
    rk_listener_config_t admin_cfg = {.plane = RK_PLANE_ADMIN,
                                      .address = cfg->admin_listen,
                                      .tables = admin_tables,
                                      .ntables = RK_ARRAY_LEN(admin_tables),
                                      .threads = 2,
                                      .max_connections = (unsigned)cfg->max_connections,
                                      .idle_timeout_s = (unsigned)cfg->idle_timeout_s,
                                      .static_dir = dashboard,
                                      .max_body = RK_ADMIN_MAX_BODY,
                                      .database_moved = rk_rules_db_moved};
    rk_listener_t *data = rk_listener_start(&data_cfg, err, sizeof err);
    if (!data)
        fprintf(stderr, "ratekitd: RATEKIT_LISTEN=\"%s\": %s\n", cfg->listen, err);
    rk_listener_t *admin = data ? rk_listener_start(&admin_cfg, err, sizeof err) : NULL;
    if (data && !admin)
        fprintf(stderr, "ratekitd: RATEKIT_ADMIN_LISTEN=\"%s\": %s\n", cfg->admin_listen, err);
    int rc = 1;
    if (data && admin) {
        print_banner(cfg, rk_listener_port(data), rk_listener_port(admin), generated);
        int sig = 0;
        sigwait(stop_signals, &sig);
        rk_info("received %s: finishing open requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        rc = 0;
    }
    rk_stats_stop(); /* ends the event streams before the admin listener waits for them */
    rk_delay_stop();
    rk_listener_stop(data, 3000);
    rk_listener_stop(admin, 1000);
    return rc;
}

int main(int argc, char **argv) {
    rk_config_t *cfg = &rk_rt.cfg;
    switch (rk_config_load(cfg, argc, argv)) {
    case RK_CONFIG_EXIT_OK:
        return 0;
    case RK_CONFIG_EXIT_ERROR:
        return 2;
    case RK_CONFIG_RUN:
        break;
    }
    rk_log_init(cfg->log_format, (rk_log_level_t)cfg->log_level);
    rk_rt.started_ms = rk_now_ms();
    bool generated;
    if (settle_admin_token(cfg, &generated) != RK_OK)
        return 2;
    rk_tokens_set_bootstrap(admin_token);
    rk_http_set_token_resolver(rk_tokens_resolve);
    if (prepare_identity(cfg) != RK_OK) {
        release_runtime();
        return 2;
    }

    /* Signals: SIGPIPE ignored (a closed socket is an error, not a death);
     * SIGTERM and SIGINT waited for here, blocked in every other thread. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    raise_fd_limit();

    int rc = serve(cfg, &stop_signals, generated);
    release_runtime();
    if (rc == 0)
        rk_info("stopped");
    return rc;
}
