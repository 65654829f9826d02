/*
 * jsonw.h — a small JSON writer for the check path's answers: appends to
 * a caller's stack buffer and moves to the heap only when that is full.
 * (cJSON allocates per node; the admin plane uses it, the check path not.)
 */
#ifndef RK_JSONW_H
#define RK_JSONW_H

#include "../common.h"

typedef struct {
    char *buf;
    size_t len, cap;
    bool on_heap;
    bool failed; /* out of memory: the text is incomplete */
} rk_jw_t;

void rk_jw_init(rk_jw_t *w, char *stack_buf, size_t cap);
void rk_jw_free(rk_jw_t *w);
void rk_jw_raw(rk_jw_t *w, const char *s, size_t n);
void rk_jw_lit(rk_jw_t *w, const char *s); /* a NUL-terminated literal, unescaped */
void rk_jw_str(rk_jw_t *w, const char *s); /* a quoted, escaped JSON string */
void rk_jw_int(rk_jw_t *w, int64_t v);

/* ,"name":<int> and friends: a member after the first. */
void rk_jw_member_int(rk_jw_t *w, const char *name, int64_t v);
void rk_jw_member_str(rk_jw_t *w, const char *name, const char *v);
void rk_jw_member_bool(rk_jw_t *w, const char *name, bool v);

#endif
