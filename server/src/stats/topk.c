/*
 * topk.c — see topk.h.
 */
#include "topk.h"

#include <stdlib.h>
#include <string.h>

void rk_topk_init(rk_topk_t *m, size_t max_len) {
    memset(m, 0, sizeof *m);
    m->max_len = max_len;
}

void rk_topk_free(rk_topk_t *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    size_t max_len = m->max_len;
    rk_topk_init(m, max_len);
}

/* The slot holding key, or the empty slot where it would go. cap > 0. */
static rk_topk_entry_t *find(const rk_topk_t *m, const char *key, size_t len) {
    size_t i = (size_t)rk_fnv1a(RK_FNV1A_INIT, key, len) & (m->cap - 1);
    for (;;) {
        rk_topk_entry_t *e = &m->slots[i];
        if (!e->key || (strncmp(e->key, key, len) == 0 && e->key[len] == '\0'))
            return e;
        i = (i + 1) & (m->cap - 1);
    }
}

/* Allocates the table: twice max_len, rounded up to a power of two. */
static bool ensure_table(rk_topk_t *m) {
    if (m->slots)
        return true;
    size_t cap = 16;
    while (cap < 2 * m->max_len)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return false;
    m->cap = cap;
    return true;
}

bool rk_topk_add(rk_topk_t *m, const char *key, size_t len, uint64_t n) {
    if (m->max_len == 0 || !ensure_table(m))
        return false;
    rk_topk_entry_t *e = find(m, key, len);
    if (e->key) {
        e->count += n;
        return true;
    }
    if (m->len >= m->max_len)
        return false;
    e->key = malloc(len + 1);
    if (!e->key)
        return false;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->count = n;
    m->len++;
    return true;
}

/* Whether a ranks before b: larger count, then smaller key. */
static bool ranks_before(const rk_topk_entry_t *a, const rk_topk_entry_t *b) {
    if (a->count != b->count)
        return a->count > b->count;
    return strcmp(a->key, b->key) < 0;
}

size_t rk_topk_top(const rk_topk_t *m, const char *prefix, rk_topk_entry_t *out, size_t k) {
    size_t have = 0, plen = strlen(prefix);
    if (k == 0)
        return 0;
    /* insertion into a sorted array of at most k: k is small (<= 100) */
    for (size_t i = 0; i < m->cap; i++) {
        const rk_topk_entry_t *e = &m->slots[i];
        if (!e->key || strncmp(e->key, prefix, plen) != 0)
            continue;
        if (have == k && !ranks_before(e, &out[k - 1]))
            continue;
        size_t pos = have < k ? have++ : k - 1;
        while (pos > 0 && ranks_before(e, &out[pos - 1])) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos] = *e;
    }
    return have;
}
