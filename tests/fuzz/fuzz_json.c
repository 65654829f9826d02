/*
 * fuzz_json.c — request bodies: exactly one JSON value or nothing, and
 * every string the check path writes back is valid JSON again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = malloc(size + 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    rk_request_t req;
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = size;
    cJSON *doc = rk_request_json(&req);
    cJSON_Delete(doc);
    /* the writer's escaping: what it writes parses back to the same string */
    char stack[256];
    rk_jw_t w;
    rk_jw_init(&w, stack, sizeof stack);
    rk_jw_str(&w, body);
    cJSON *back = w.failed ? NULL : cJSON_ParseWithLength(w.buf, w.len);
    if (!w.failed && strlen(body) == size && memchr(body, 0x80, size) == NULL) {
        bool ascii = true;
        for (size_t i = 0; i < size; i++)
            ascii &= data[i] < 0x80;
        if (ascii && (!cJSON_IsString(back) || strcmp(back->valuestring, body) != 0))
            abort();
    }
    cJSON_Delete(back);
    rk_jw_free(&w);
    free(body);
    return 0;
}
