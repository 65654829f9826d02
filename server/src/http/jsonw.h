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

/*
 * A quoted string that needs no escaping, copied as it is: a rule id
 * ([a-z0-9_-], rule.c) or a name of ratekit's own. Anything from a client
 * goes through rk_jw_str.
 */
void rk_jw_plain_str(rk_jw_t *w, const char *s);

/*
 * ,"name":<int> and friends: a member after the first. name is a string
 * literal (the macros take its length at compile time; anything else does
 * not compile).
 */
void rk_jw_member_int_n(rk_jw_t *w, const char *name, size_t name_len, int64_t v);
void rk_jw_member_str_n(rk_jw_t *w, const char *name, size_t name_len, const char *v);
void rk_jw_member_bool_n(rk_jw_t *w, const char *name, size_t name_len, bool v);
void rk_jw_member_plain_n(rk_jw_t *w, const char *name, size_t name_len, const char *v);
#define rk_jw_member_int(w, name, v) rk_jw_member_int_n(w, "" name, sizeof(name) - 1, v)
#define rk_jw_member_str(w, name, v) rk_jw_member_str_n(w, "" name, sizeof(name) - 1, v)
#define rk_jw_member_bool(w, name, v) rk_jw_member_bool_n(w, "" name, sizeof(name) - 1, v)
/* ,"name":"v" where v needs no escaping (see rk_jw_plain_str). */
#define rk_jw_member_plain(w, name, v) rk_jw_member_plain_n(w, "" name, sizeof(name) - 1, v)

#endif
