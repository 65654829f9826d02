/*
 * reply.c — every answer goes out through rk_reply_response(), which adds
 * the headers all answers carry; errors have one shape everywhere:
 * {"error": {"code": "...", "message": "...", ...}}.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* The dashboard's policy: nothing inline, nothing from elsewhere. */
static const char ADMIN_CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors "
                                "'none'; base-uri 'none'; form-action 'self'";

/*
 * Whether a JSON text holds the escape \u0000 (a backslash not itself
 * escaped): cJSON keeps it in the string, which every C string reader would
 * then cut short, storing "v" for "v\u0000x".
 */
static bool has_escaped_nul(const char *text, size_t len) {
    static const char escape[] = "\\u0000";
    for (size_t i = 0; i + sizeof escape - 1 <= len; i++) {
        if (memcmp(text + i, escape, sizeof escape - 1) != 0)
            continue;
        size_t backslashes = 0;
        while (backslashes < i && text[i - backslashes - 1] == '\\')
            backslashes++;
        if (backslashes % 2 == 0)
            return true;
    }
    return false;
}

/*
 * Whether a JSON text (NUL-terminated) holds a number too small for a
 * double, other than zero (1e-400): cJSON reads it as 0, a cost of 0 that
 * counts nothing where 1e-400 is no integer. Outside strings, a digit or a
 * '-' not after another number character starts a number (after a raw NUL
 * too, which cJSON skips as it does a space).
 */
static bool has_underflowing_number(const char *text, size_t len) {
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if ((c == '-' || (c >= '0' && c <= '9')) &&
                   (i == 0 || !memchr("0123456789+-.eE", text[i - 1], 15))) {
            char *end;
            errno = 0;
            double v = strtod(text + i, &end);
            if (errno == ERANGE && v == 0)
                return true;
            i = (size_t)(end - text) - (end > text + i);
        }
    }
    return false;
}

cJSON *rk_request_json(const rk_request_t *req) {
    /* Not UTF-8: stored, it would make the exports and lists that hold it
     * JSON no reader takes. */
    if (has_escaped_nul(req->body, req->body_len) || !rk_utf8_valid(req->body, req->body_len) ||
        has_underflowing_number(req->body, req->body_len))
        return NULL;
    const char *end = NULL;
    /* cJSON checks for the NUL after the value within the length: count it in. */
    cJSON *root = cJSON_ParseWithLengthOpts(req->body, req->body_len + 1, &end, 1);
    if (root && end != req->body + req->body_len) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

enum MHD_Result rk_reply_bad_json(rk_request_t *req, const char *expected) {
    if (req->body_len && has_escaped_nul(req->body, req->body_len))
        return rk_reply_error(req, 400, "invalid_json",
                              "A string of the body holds \\u0000, which ratekit does not take");
    if (!rk_utf8_valid(req->body, req->body_len))
        return rk_reply_error(req, 400, "invalid_json", "The body is not UTF-8");
    if (req->body_len && has_underflowing_number(req->body, req->body_len))
        return rk_reply_error(
            req, 400, "invalid_json",
            "A number of the body is too small for a double (it would read as 0)");
    return rk_reply_error(req, 400, "invalid_json", "The body must be %s", expected);
}

enum MHD_Result rk_reply_response(rk_request_t *req, unsigned status, struct MHD_Response *resp) {
    if (!resp)
        return MHD_NO;
    if (req->admin_plane) {
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "Content-Security-Policy", ADMIN_CSP);
    }
    /* A caller's request id comes back, to join its logs with ours. */
    const char *request_id = rk_request_header(req, "X-Request-Id");
    if (request_id && strlen(request_id) <= 128)
        MHD_add_response_header(resp, "X-Request-Id", request_id);
    enum MHD_Result ret = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    req->responded = true;
    return ret;
}

enum MHD_Result rk_reply_buf(rk_request_t *req, unsigned status, const char *content_type,
                             const char *buf, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (req->admin_plane)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return rk_reply_response(req, status, resp);
}

enum MHD_Result rk_reply_empty(rk_request_t *req, unsigned status) {
    return rk_reply_buf(req, status, NULL, "", 0);
}

enum MHD_Result rk_reply_json(rk_request_t *req, unsigned status, cJSON *body) {
    return rk_reply_json_tagged(req, status, body, NULL);
}

enum MHD_Result rk_reply_json_tagged(rk_request_t *req, unsigned status, cJSON *body,
                                     const char *etag) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (req->admin_plane)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (etag)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    return rk_reply_response(req, status, resp);
}

/* {"error": {"code": code, "message": message}} with room for more fields. */
static cJSON *error_body(const char *code, const char *message, cJSON **error) {
    cJSON *root = cJSON_CreateObject();
    *error = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(*error, "code", code);
    cJSON_AddStringToObject(*error, "message", message);
    return root;
}

enum MHD_Result rk_reply_error(rk_request_t *req, unsigned status, const char *code,
                               const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    rk_utf8_scrub(message); /* it may quote a path or a value as the client sent it */
    cJSON *error;
    return rk_reply_json(req, status, error_body(code, message, &error));
}

enum MHD_Result rk_reply_invalid(rk_request_t *req, const char *code, const char *message,
                                 cJSON *errors) {
    cJSON *error;
    cJSON *root = error_body(code, message, &error);
    if (errors)
        cJSON_AddItemToObject(error, "errors", errors);
    return rk_reply_json(req, MHD_HTTP_BAD_REQUEST, root);
}
