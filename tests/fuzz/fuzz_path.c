/*
 * fuzz_path.c — path patterns of rules and request targets: validation,
 * normalisation and matching. The first line is the pattern, the rest the
 * target.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check/match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *target = memchr(text, '\n', size);
    size_t target_len = 0;
    if (target) {
        *target++ = '\0';
        target_len = size - (size_t)(target - text);
    }
    char path[RK_PATH_MAX];
    bool normalised =
        target && rk_path_normalize(target, target_len, path, sizeof path) == RK_OK;
    if (normalised && !strpbrk(path, "%?#")) {
        /* normalising is idempotent (a decoded '%' may start a new escape: one
         * decoding only, as nginx's $uri; a decoded ? or # is path, not query) */
        char again[RK_PATH_MAX];
        if (rk_path_normalize(path, strlen(path), again, sizeof again) != RK_OK ||
            strcmp(path, again) != 0)
            abort();
    }
    rk_match_t m;
    memset(&m, 0, sizeof m);
    const char *why;
    if (rk_path_pattern_valid(text, &why) && rk_match_set_path(&m, text) == RK_OK) {
        if (normalised)
            (void)rk_match_path(&m, path);
        (void)rk_match_path(&m, text[0] == '/' ? text : "/");
    }
    rk_match_free(&m);
    free(text);
    return 0;
}
