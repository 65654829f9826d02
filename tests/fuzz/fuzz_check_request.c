/*
 * fuzz_check_request.c — the data plane's check reader: never reads or
 * writes outside the body, and whatever it accepts cJSON (the admin plane's
 * parser) accepts too, with the same rule, key, cost and request members,
 * and the same headers: the first RK_CHECK_READER_MAX_HEADERS in order, then
 * past them exactly those ratekit always reads; the same for a batch's
 * entries and a release's lease.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/check_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reader's view of a member agrees with cJSON's. */
static void same_member(const rk_jv_t *v, const cJSON *m) {
    if (v->kind == RK_JV_ABSENT) {
        if (m)
            abort();
        return;
    }
    if (!m)
        abort();
    switch (v->kind) {
    case RK_JV_STRING:
        if (!cJSON_IsString(m) || strlen(m->valuestring) != v->len ||
            memcmp(m->valuestring, v->str, v->len) != 0 || strlen(v->str) != v->len)
            abort();
        break;
    case RK_JV_NUMBER:
        if (!cJSON_IsNumber(m) || (!isnan(v->num) && m->valuedouble != v->num))
            abort();
        break;
    case RK_JV_OBJECT:
        if (!cJSON_IsObject(m))
            abort();
        break;
    case RK_JV_NULL:
        if (!cJSON_IsNull(m))
            abort();
        break;
    default:
        break;
    }
}

/* cJSON's document of text (size bytes, NUL-terminated); aborts unless it is one JSON value. */
static cJSON *parse_whole(const char *text, size_t size) {
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, size + 1, &end, 1);
    if (!doc || end != text + size)
        abort(); /* the reader accepted what is not one JSON value */
    return doc;
}

/* The batch and release readers on their own copy of the body (they decode in place). */
static void read_batch_and_release(const uint8_t *data, size_t size, const char *text) {
    static rk_check_batch_t batch;
    char *body = malloc(size ? size : 1);
    if (!body)
        return;
    memcpy(body, data, size);
    if (rk_check_read_batch(body, size, &batch) == RK_CHECK_READ_OK) {
        cJSON *doc = parse_whole(text, size);
        const cJSON *checks = cJSON_GetObjectItemCaseSensitive(doc, "checks");
        if (batch.root == RK_JV_OBJECT && cJSON_IsArray(checks)) {
            if ((size_t)cJSON_GetArraySize(checks) != batch.n)
                abort();
            size_t i = 0;
            for (const cJSON *c = checks->child; c && i < RK_CHECK_READER_BATCH_MAX;
                 c = c->next, i++) {
                const rk_check_entry_t *e = &batch.entry[i];
                if (e->kind != RK_JV_OBJECT || e->duplicate)
                    continue;
                same_member(&e->rule, cJSON_GetObjectItemCaseSensitive(c, "rule"));
                same_member(&e->key, cJSON_GetObjectItemCaseSensitive(c, "key"));
                same_member(&e->cost, cJSON_GetObjectItemCaseSensitive(c, "cost"));
            }
        }
        cJSON_Delete(doc);
    }
    memcpy(body, data, size);
    rk_release_body_t release;
    if (rk_check_read_release(body, size, &release) == RK_CHECK_READ_OK) {
        cJSON *doc = parse_whole(text, size);
        if (release.root == RK_JV_OBJECT)
            same_member(&release.lease, cJSON_GetObjectItemCaseSensitive(doc, "lease"));
        cJSON_Delete(doc);
    }
    free(body);
}

/* The headers the reader kept are cJSON's members of "headers", by the bound's rule. */
static void same_headers(const rk_check_body_t *b, const cJSON *headers) {
    if (!cJSON_IsObject(headers)) {
        if (b->nheaders)
            abort();
        return;
    }
    size_t kept = 0, i = 0;
    for (const cJSON *h = headers->child; h; h = h->next, i++) {
        if (i >= RK_CHECK_READER_MAX_HEADERS && !rk_check_reader_always_reads(h->string))
            continue; /* ignored */
        if (kept >= b->nheaders || strcmp(b->header[kept].name, h->string) != 0 ||
            b->header[kept].name_len != strlen(h->string))
            abort();
        same_member(&b->header[kept].value, h);
        kept++;
    }
    if (kept != b->nheaders)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exactly the body's size: ASan sees any read past it */
    char *body = malloc(size ? size : 1);
    char *copy = malloc(size + 1);
    if (!body || !copy) {
        free(body);
        free(copy);
        return 0;
    }
    memcpy(body, data, size);
    memcpy(copy, data, size);
    copy[size] = '\0';
    rk_check_body_t b;
    rk_check_read_status_t st = rk_check_read(body, size, &b);
    if (st == RK_CHECK_READ_OK) {
        cJSON *doc = parse_whole(copy, size);
        if (b.root == RK_JV_OBJECT) {
            if (!cJSON_IsObject(doc))
                abort();
            same_member(&b.rule, cJSON_GetObjectItemCaseSensitive(doc, "rule"));
            same_member(&b.key, cJSON_GetObjectItemCaseSensitive(doc, "key"));
            same_member(&b.cost, cJSON_GetObjectItemCaseSensitive(doc, "cost"));
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "request");
            same_member(&b.request, r);
            if (cJSON_IsObject(r)) {
                same_member(&b.path, cJSON_GetObjectItemCaseSensitive(r, "path"));
                same_member(&b.ip, cJSON_GetObjectItemCaseSensitive(r, "ip"));
                same_member(&b.method, cJSON_GetObjectItemCaseSensitive(r, "method"));
                same_member(&b.host, cJSON_GetObjectItemCaseSensitive(r, "host"));
                same_headers(&b, cJSON_GetObjectItemCaseSensitive(r, "headers"));
            }
        }
        cJSON_Delete(doc);
    }
    read_batch_and_release(data, size, copy);
    free(body);
    free(copy);
    return 0;
}
