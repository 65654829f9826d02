/*
 * static.c — the dashboard's files on the admin plane.
 *
 * Hashed assets (/assets/...) are cached forever; index.html is never
 * cached, so a new release is picked up at once; any other path without a
 * file extension is a deep link of the single-page app and gets index.html.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
};

static const char *content_type_of(const char *path) {
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < RK_ARRAY_LEN(content_types); i++)
        if (!strcmp(dot, content_types[i].ext))
            return content_types[i].type;
    return "application/octet-stream";
}

/* A path is served only if it is plain: no "..", no backslash, no NUL, bounded. */
static bool safe_path(const char *path) {
    if (path[0] != '/' || strlen(path) > 512 || strstr(path, "..") || strchr(path, '\\'))
        return false;
    return true;
}

/* Answers the file if it exists (*result set, true); false when there is none. */
static bool serve_file(rk_request_t *req, const char *file, const char *cache,
                       enum MHD_Result *result) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return false;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((size_t)sb.st_size, fd);
    if (!resp) {
        close(fd);
        *result = MHD_NO;
        return true;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type_of(file));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    *result = rk_reply_response(req, MHD_HTTP_OK, resp);
    return true;
}

enum MHD_Result rk_serve_static(rk_request_t *req, const char *dir) {
    static const char missing[] =
        "<!doctype html><title>ratekit</title><p>The dashboard is not built. Run "
        "<code>make</code> in the ratekit folder, or set RATEKIT_DASHBOARD_DIR.</p>";
    if (!dir || !dir[0])
        return rk_reply_buf(req, MHD_HTTP_NOT_FOUND, "text/html; charset=utf-8", missing,
                            sizeof missing - 1);
    if (!safe_path(req->path))
        return rk_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "No such file");
    char file[1600];
    const char *path = strcmp(req->path, "/") ? req->path : "/index.html";
    bool is_asset = !strncmp(path, "/assets/", 8);
    snprintf(file, sizeof file, "%s%s", dir, path);
    enum MHD_Result r;
    if (serve_file(req, file, is_asset ? "public, max-age=31536000, immutable" : "no-cache", &r))
        return r;
    const char *last = strrchr(path, '/');
    if (strchr(last, '.')) /* a missing file, not a route of the app */
        return rk_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "No such file");
    snprintf(file, sizeof file, "%s/index.html", dir);
    if (serve_file(req, file, "no-cache", &r))
        return r;
    return rk_reply_buf(req, MHD_HTTP_NOT_FOUND, "text/html; charset=utf-8", missing,
                        sizeof missing - 1);
}
