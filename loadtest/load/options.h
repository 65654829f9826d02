/*
 * options.h — what one ratekit-load run does, from its command line.
 */
#ifndef LT_OPTIONS_H
#define LT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define LT_MAX_URLS 16
#define LT_MAX_PIPELINE 64
#define LT_MAX_CPU_PIDS 1024 /* a server and its workers, one per core */
/* context and auth: key n is the client address 10.0.0.1 + n, within 10.0.0.0/8 */
#define LT_MAX_ADDRESS_KEYS 16777215L

/* What each request asks. */
typedef enum {
    LT_TARGET_CHECK,   /* POST /v1/check {"rule","key"} */
    LT_TARGET_CONTEXT, /* POST /v1/check {"request":{method,path,ip,headers}} */
    LT_TARGET_AUTH,    /* GET /v1/auth with X-Original-URI and X-Forwarded-For */
    LT_TARGET_GET,     /* GET <path>, for plain HTTP references */
    LT_TARGET_LEASE,   /* POST /v1/acquire {"rule","key"}, then /v1/release of its lease */
} lt_target_t;

/* How keys are drawn from the K keys. */
typedef enum {
    LT_DIST_UNIFORM,
    LT_DIST_ZIPF, /* rank r drawn with probability proportional to 1/r^s */
    LT_DIST_HOT,  /* always the first key */
} lt_dist_t;

/* Processes whose CPU time is summed (--cpu-of, --store-cpu-of). */
typedef struct {
    int pids[LT_MAX_CPU_PIDS];
    int n;
} lt_pids_t;

/* A base URL: a loopback address and an optional path. */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostport[80]; /* for the Host header */
    char path[256];    /* "" when the URL has none */
    char text[360];    /* as given */
} lt_url_t;

typedef struct {
    lt_url_t urls[LT_MAX_URLS];
    int nurls;
    lt_target_t target;
    char rule[96];
    char key[128];          /* one fixed key (check target); "" to draw keys */
    char request_path[256]; /* the protected request's path (context, auth) */
    long keys;
    lt_dist_t dist;
    double zipf_s;
    int connections;
    int threads;
    int pipeline; /* requests in flight per connection */
    double duration_s;
    double warmup_s;
    double rate;   /* open loop: requests per second; 0 for closed loop */
    long requests; /* send exactly this many (0: no bound) */
    const char *json_path;
    const char *label;
    bool quiet;
    long exact_limit; /* exactness mode when > 0 */
    int procs;
    lt_pids_t cpu_of;       /* --cpu-of: the server's processes, whose CPU time is reported */
    lt_pids_t store_cpu_of; /* --store-cpu-of: the store's (Redis), reported apart */
} lt_options_t;

/*
 * Fills o from argv. Returns 0 to run, 1 when --help was printed, and -1
 * after printing an error naming the bad argument to stderr.
 */
int lt_options_parse(lt_options_t *o, int argc, char **argv);

/* "check", "context", "auth", "get", "lease". */
const char *lt_target_name(lt_target_t t);
/* "uniform", "zipf", "hot". */
const char *lt_dist_name(lt_dist_t d);

#endif
