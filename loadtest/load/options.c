/*
 * options.c — the command line of ratekit-load: one table of options,
 * from which both parsing and --help come.
 */
#include "options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_URL = 256,
    OPT_TARGET,
    OPT_RULE,
    OPT_KEY,
    OPT_PATH,
    OPT_KEYS,
    OPT_DIST,
    OPT_ZIPF_S,
    OPT_CONNECTIONS,
    OPT_THREADS,
    OPT_PIPELINE,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_RATE,
    OPT_REQUESTS,
    OPT_JSON,
    OPT_LABEL,
    OPT_QUIET,
    OPT_EXACT,
    OPT_PROCS,
    OPT_CPU_OF,
    OPT_STORE_CPU_OF,
    OPT_HELP,
};

typedef struct {
    const char *name;
    int has_arg;
    int id;
    const char *arg;
    const char *help;
} option_row_t;

static const option_row_t rows[] = {
    {"url", 1, OPT_URL, "URL",
     "base URL on loopback, http://127.0.0.1:PORT[/path]; repeat to spread connections"},
    {"target", 1, OPT_TARGET, "T", "check (default), context, auth, get or lease"},
    {"rule", 1, OPT_RULE, "ID", "rule of the direct check form (check, lease)"},
    {"key", 1, OPT_KEY, "KEY", "one fixed client key instead of drawn ones"},
    {"path", 1, OPT_PATH, "PATH", "path of the protected request (context, auth); /api/items"},
    {"keys", 1, OPT_KEYS, "K", "distinct keys drawn from (10000; context, auth: at most 16777215)"},
    {"dist", 1, OPT_DIST, "D", "uniform (default), zipf or hot"},
    {"zipf-s", 1, OPT_ZIPF_S, "S", "exponent of the zipf distribution (1.0)"},
    {"connections", 1, OPT_CONNECTIONS, "N", "keep-alive connections (64)"},
    {"threads", 1, OPT_THREADS, "N", "loader threads, each with its own epoll (2)"},
    {"pipeline", 1, OPT_PIPELINE, "N", "requests in flight per connection (1)"},
    {"duration", 1, OPT_DURATION, "S", "seconds measured (5); with --requests, a time limit"},
    {"warmup", 1, OPT_WARMUP, "S", "seconds run before measuring (1; none with --requests)"},
    {"rate", 1, OPT_RATE, "R",
     "open loop: R requests/s at t0 + i/R, latency from that intended time"},
    {"requests", 1, OPT_REQUESTS, "N", "send exactly N requests, then stop when all are answered"},
    {"json", 1, OPT_JSON, "FILE", "also write the results as JSON to FILE"},
    {"label", 1, OPT_LABEL, "TEXT", "a name for this run in the table and the JSON"},
    {"quiet", 0, OPT_QUIET, NULL, "no progress line on stderr"},
    {"exact", 1, OPT_EXACT, "LIMIT",
     "exactness: hammer one key, fail unless exactly LIMIT requests are allowed"},
    {"procs", 1, OPT_PROCS, "P", "exactness: client processes (2)"},
    {"cpu-of", 1, OPT_CPU_OF, "PID",
     "report the CPU time PID used per answer in the measured window; repeat to sum"},
    {"store-cpu-of", 1, OPT_STORE_CPU_OF, "PID",
     "the same for the store (Redis), reported apart; repeat to sum"},
    {"help", 0, OPT_HELP, NULL, "this text"},
};
#define NROWS (sizeof rows / sizeof rows[0])

static void print_help(const char *prog) {
    printf("usage: %s --url http://127.0.0.1:PORT [options]\n\n"
           "HTTP/1.1 keep-alive load against ratekitd (or a reference server) on loopback.\n"
           "Closed loop by default (each connection sends when its answer arrives);\n"
           "--rate makes it open loop. Prints a progress line a second on stderr and\n"
           "a table on stdout.\n\n",
           prog);
    for (size_t i = 0; i < NROWS; i++) {
        char left[40];
        snprintf(left, sizeof left, "--%s%s%s", rows[i].name, rows[i].arg ? " " : "",
                 rows[i].arg ? rows[i].arg : "");
        printf("  %-22s %s\n", left, rows[i].help);
    }
    printf("\nExamples:\n"
           "  %s --url http://127.0.0.1:8080 --rule api --keys 10000 --duration 5\n"
           "  %s --url http://127.0.0.1:8080 --target auth --rate 10000\n"
           "  %s --url http://127.0.0.1:8080 --url http://127.0.0.1:8090 --rule x \\\n"
           "      --exact 100 --procs 2\n",
           prog, prog, prog);
}

/* A strictly parsed number within [lo, hi]; false when it is not one. */
static bool parse_number(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end || isnan(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
    double v;
    if (!parse_number(s, (double)lo, (double)hi, &v) || v != floor(v))
        return false;
    *out = (long)v;
    return true;
}

/* True for 127.0.0.0/8 and ::1. */
static bool is_loopback(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)a;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)a;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

/*
 * Parses http://HOST:PORT[/path] where HOST is a loopback address, "localhost"
 * or [::1]. Writes the reason to err on failure.
 */
static bool parse_url(const char *text, lt_url_t *u, const char **err) {
    memset(u, 0, sizeof *u);
    snprintf(u->text, sizeof u->text, "%s", text);
    if (strncmp(text, "http://", 7) != 0) {
        *err = "must start with http://";
        return false;
    }
    const char *host = text + 7;
    const char *slash = strchr(host, '/');
    size_t hp_len = slash ? (size_t)(slash - host) : strlen(host);
    if (hp_len == 0 || hp_len >= sizeof u->hostport) {
        *err = "has no host:port";
        return false;
    }
    memcpy(u->hostport, host, hp_len);
    u->hostport[hp_len] = '\0';
    if (slash)
        snprintf(u->path, sizeof u->path, "%s", slash);
    if (!strcmp(u->path, "/"))
        u->path[0] = '\0';
    char name[80];
    const char *port_text;
    if (u->hostport[0] == '[') {
        const char *close = strchr(u->hostport, ']');
        if (!close || close[1] != ':') {
            *err = "needs [v6]:port";
            return false;
        }
        snprintf(name, sizeof name, "%.*s", (int)(close - u->hostport - 1), u->hostport + 1);
        port_text = close + 2;
    } else {
        const char *colon = strrchr(u->hostport, ':');
        if (!colon) {
            *err = "needs an explicit port";
            return false;
        }
        snprintf(name, sizeof name, "%.*s", (int)(colon - u->hostport), u->hostport);
        port_text = colon + 1;
    }
    long port;
    if (!parse_long(port_text, 1, 65535, &port)) {
        *err = "has a bad port";
        return false;
    }
    if (!strcmp(name, "localhost"))
        snprintf(name, sizeof name, "127.0.0.1");
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)&u->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&u->addr;
    if (inet_pton(AF_INET, name, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        u->addrlen = sizeof *in;
    } else if (inet_pton(AF_INET6, name, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        u->addrlen = sizeof *in6;
    } else {
        *err = "needs a numeric loopback address or localhost";
        return false;
    }
    if (!is_loopback(&u->addr)) {
        *err = "is not a loopback address (ratekit-load only loads this machine)";
        return false;
    }
    return true;
}

static bool copy_text(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n == 0 || n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* JSON text is written unescaped into requests: refuse what would need escaping. */
static bool json_safe(const char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

/* Applies one option; false with a message on a bad value. */
static bool apply(lt_options_t *o, int id, const char *arg, bool *warmup_set) {
    long l;
    switch (id) {
    case OPT_URL: {
        const char *err = NULL;
        if (o->nurls == LT_MAX_URLS) {
            fprintf(stderr, "ratekit-load: at most %d --url\n", LT_MAX_URLS);
            return false;
        }
        if (!parse_url(arg, &o->urls[o->nurls], &err)) {
            fprintf(stderr, "ratekit-load: --url %s %s\n", arg, err);
            return false;
        }
        o->nurls++;
        return true;
    }
    case OPT_TARGET:
        for (int t = LT_TARGET_CHECK; t <= LT_TARGET_LEASE; t++)
            if (!strcmp(arg, lt_target_name((lt_target_t)t))) {
                o->target = (lt_target_t)t;
                return true;
            }
        fprintf(stderr, "ratekit-load: --target must be check, context, auth, get or lease\n");
        return false;
    case OPT_RULE:
        if (copy_text(o->rule, sizeof o->rule, arg) && json_safe(arg))
            return true;
        fprintf(stderr, "ratekit-load: --rule needs a plain rule id\n");
        return false;
    case OPT_KEY:
        if (copy_text(o->key, sizeof o->key, arg) && json_safe(arg))
            return true;
        fprintf(stderr, "ratekit-load: --key needs 1 to 127 plain characters\n");
        return false;
    case OPT_PATH:
        if (arg[0] == '/' && copy_text(o->request_path, sizeof o->request_path, arg) &&
            json_safe(arg) && !strpbrk(arg, " \r\n"))
            return true;
        fprintf(stderr, "ratekit-load: --path needs a path starting with /\n");
        return false;
    case OPT_KEYS:
        if (!parse_long(arg, 1, 100000000, &o->keys))
            break;
        return true;
    case OPT_DIST:
        for (int t = LT_DIST_UNIFORM; t <= LT_DIST_HOT; t++)
            if (!strcmp(arg, lt_dist_name((lt_dist_t)t))) {
                o->dist = (lt_dist_t)t;
                return true;
            }
        fprintf(stderr, "ratekit-load: --dist must be uniform, zipf or hot\n");
        return false;
    case OPT_ZIPF_S:
        if (!parse_number(arg, 0.01, 10, &o->zipf_s))
            break;
        return true;
    case OPT_CONNECTIONS:
        if (!parse_long(arg, 1, 20000, &l))
            break;
        o->connections = (int)l;
        return true;
    case OPT_THREADS:
        if (!parse_long(arg, 1, 64, &l))
            break;
        o->threads = (int)l;
        return true;
    case OPT_PIPELINE:
        if (!parse_long(arg, 1, LT_MAX_PIPELINE, &l))
            break;
        o->pipeline = (int)l;
        return true;
    case OPT_DURATION:
        if (!parse_number(arg, 0.05, 86400, &o->duration_s))
            break;
        return true;
    case OPT_WARMUP:
        if (!parse_number(arg, 0, 3600, &o->warmup_s))
            break;
        *warmup_set = true;
        return true;
    case OPT_RATE:
        if (!parse_number(arg, 1, 10000000, &o->rate))
            break;
        return true;
    case OPT_REQUESTS:
        if (!parse_long(arg, 1, 1000000000, &o->requests))
            break;
        return true;
    case OPT_JSON:
        o->json_path = arg;
        return true;
    case OPT_LABEL:
        if (!json_safe(arg))
            break;
        o->label = arg;
        return true;
    case OPT_QUIET:
        o->quiet = true;
        return true;
    case OPT_EXACT:
        if (!parse_long(arg, 1, 10000000, &o->exact_limit))
            break;
        return true;
    case OPT_PROCS:
        if (!parse_long(arg, 1, 64, &l))
            break;
        o->procs = (int)l;
        return true;
    case OPT_CPU_OF:
    case OPT_STORE_CPU_OF: {
        lt_pids_t *pids = id == OPT_CPU_OF ? &o->cpu_of : &o->store_cpu_of;
        if (pids->n == LT_MAX_CPU_PIDS) {
            fprintf(stderr, "ratekit-load: at most %d --%s\n", LT_MAX_CPU_PIDS,
                    id == OPT_CPU_OF ? "cpu-of" : "store-cpu-of");
            return false;
        }
        if (!parse_long(arg, 1, 4194304, &l)) /* the kernel's largest pid_max */
            break;
        for (int i = 0; i < pids->n; i++)
            if (pids->pids[i] == (int)l)
                return true; /* counted once */
        pids->pids[pids->n++] = (int)l;
        return true;
    }
    default:
        break;
    }
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].id == id)
            fprintf(stderr, "ratekit-load: bad value for --%s: '%s'\n", rows[i].name, arg);
    return false;
}

int lt_options_parse(lt_options_t *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->keys = 10000;
    o->zipf_s = 1.0;
    o->connections = 64;
    o->threads = 2;
    o->pipeline = 1;
    o->duration_s = 5;
    o->warmup_s = 1;
    o->procs = 2;
    snprintf(o->request_path, sizeof o->request_path, "/api/items");
    bool duration_set = false, warmup_set = false;

    struct option longopts[NROWS + 1];
    for (size_t i = 0; i < NROWS; i++)
        longopts[i] = (struct option){rows[i].name, rows[i].has_arg, NULL, rows[i].id};
    longopts[NROWS] = (struct option){0, 0, 0, 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            print_help(argv[0]);
            return 1;
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "ratekit-load: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
        if (c == OPT_DURATION)
            duration_set = true;
        if (!apply(o, c, optarg, &warmup_set))
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "ratekit-load: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (o->nurls == 0) {
        fprintf(stderr, "ratekit-load: --url is required (see --help)\n");
        return -1;
    }
    if (o->exact_limit > 0) {
        if (o->target != LT_TARGET_CHECK || !o->rule[0]) {
            fprintf(stderr, "ratekit-load: --exact needs --rule (direct checks of one key)\n");
            return -1;
        }
        if (!o->key[0])
            snprintf(o->key, sizeof o->key, "exact-key");
        if (!o->requests)
            o->requests = 3 * o->exact_limit;
        if (o->rate > 0) {
            fprintf(stderr, "ratekit-load: --exact runs closed loop; drop --rate\n");
            return -1;
        }
        if (o->cpu_of.n > 0 || o->store_cpu_of.n > 0) {
            fprintf(stderr, "ratekit-load: --exact measures no CPU time; drop --%s\n",
                    o->cpu_of.n > 0 ? "cpu-of" : "store-cpu-of");
            return -1;
        }
    }
    if ((o->target == LT_TARGET_CHECK || o->target == LT_TARGET_LEASE) && !o->rule[0]) {
        fprintf(stderr, "ratekit-load: the %s target needs --rule\n", lt_target_name(o->target));
        return -1;
    }
    if ((o->target == LT_TARGET_CONTEXT || o->target == LT_TARGET_AUTH) &&
        o->keys > LT_MAX_ADDRESS_KEYS) {
        fprintf(stderr,
                "ratekit-load: the %s target draws client addresses from 10.0.0.0/8, which "
                "holds %ld distinct ones: --keys %ld would repeat them\n",
                lt_target_name(o->target), LT_MAX_ADDRESS_KEYS, o->keys);
        return -1;
    }
    if (o->target == LT_TARGET_LEASE && o->pipeline != 1) {
        /* a release goes out once its acquire is answered */
        fprintf(stderr, "ratekit-load: the lease target sends one request at a time per "
                        "connection; drop --pipeline\n");
        return -1;
    }
    if (o->requests) {
        if (warmup_set && o->warmup_s > 0) {
            /* the budget would be spent, in part or whole, before the window */
            fprintf(stderr, "ratekit-load: --requests measures every request it sends, from "
                            "the first: drop --warmup\n");
            return -1;
        }
        o->warmup_s = 0;
        if (!duration_set)
            o->duration_s = 60;
    }
    if (o->threads > o->connections)
        o->threads = o->connections;
    return 0;
}

const char *lt_target_name(lt_target_t t) {
    static const char *const names[] = {"check", "context", "auth", "get", "lease"};
    return names[t];
}

const char *lt_dist_name(lt_dist_t d) {
    static const char *const names[] = {"uniform", "zipf", "hot"};
    return names[d];
}
