/*
 * trivial_mhd.c — the HTTP reference for ratekitd's own stack: a
 * libmicrohttpd server set up as server/src/http/server.c sets up ratekitd's
 * listeners on the embedded store (one daemon per core, each with its own
 * thread, epoll and listening socket on the port, SO_REUSEPORT;
 * suspend/resume allowed), that reads any body and answers every request
 * with a fixed JSON decision on the handler's last call, never the first
 * (answering on the first call costs keep-alive with 0.9.75).
 *
 * What ratekitd does beyond this — parse the check, decide, write the
 * answer and its headers — is what it costs over this reference. With
 * --ratekit-answer it sends the bytes ratekitd sends for an allowed check
 * (its rate-limit headers and its body, fixed): what ratekitd costs over
 * that is its own work alone, the answer's size and headers being the
 * API's (DESIGN §4).
 *
 * Usage: trivial-mhd PORT [THREADS] [--ratekit-answer]
 *        (THREADS default: online cores)
 * Listens on 127.0.0.1:PORT until SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char answer[] = "{\"allowed\":true,\"limit\":1000000,\"remaining\":999999,"
                             "\"reset_ms\":4,\"retry_after_ms\":0}";

/* What ratekitd answers to an allowed check of the bench's token-bucket rule. */
static const char ratekit_answer[] =
    "{\"allowed\":true,\"limit\":1000000,\"remaining\":999999,\"reset_ms\":4,"
    "\"retry_after_ms\":0,\"rule\":\"bench-token-bucket\",\"mode\":\"enforce\",\"results\":[{"
    "\"rule\":\"bench-token-bucket\",\"key\":\"k1234\",\"mode\":\"enforce\",\"allowed\":true,"
    "\"limit\":1000000,\"remaining\":999999,\"reset_ms\":4,\"retry_after_ms\":0}]}";
static const char *const ratekit_headers[][2] = {
    {"RateLimit-Policy", "\"bench-token-bucket\";q=1000000;w=3600"},
    {"RateLimit", "\"bench-token-bucket\";r=999999;t=1"},
    {"X-RateLimit-Limit", "1000000"},
    {"X-RateLimit-Remaining", "999999"},
    {"X-RateLimit-Reset", "1796299126"},
};

static int as_ratekit; /* --ratekit-answer */

/*
 * The access handler: the first call only marks the request (req_cls),
 * body chunks are consumed, and the last call queues the answer.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    static int marker;
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    const char *body = as_ratekit ? ratekit_answer : answer;
    size_t len = as_ratekit ? sizeof ratekit_answer - 1 : sizeof answer - 1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    for (size_t i = 0; as_ratekit && i < sizeof ratekit_headers / sizeof *ratekit_headers; i++)
        MHD_add_response_header(resp, ratekit_headers[i][0], ratekit_headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[argc - 1], "--ratekit-answer")) {
        as_ratekit = 1;
        argc--;
    }
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (port <= 0 || port > 65535 || threads <= 0 || threads > 256) {
        fprintf(stderr, "usage: %s PORT [THREADS] [--ratekit-answer]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* SIGINT and SIGTERM blocked in every thread (libmicrohttpd's inherit
     * the mask) and awaited by main: a handler run by a daemon's thread
     * would leave main waiting in pause() for ever. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *daemons[256];
    for (long i = 0; i < threads; i++) {
        daemons[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                                      (struct sockaddr *)&addr, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                                      1u, MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
                                      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
        if (!daemons[i]) {
            fprintf(stderr, "trivial-mhd: cannot listen on 127.0.0.1:%ld\n", port);
            return 1;
        }
    }
    int sig;
    sigwait(&stop, &sig);
    for (long i = 0; i < threads; i++)
        MHD_stop_daemon(daemons[i]);
    return 0;
}
