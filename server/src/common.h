/*
 * common.h — status codes and small helpers shared by every subsystem.
 */
#ifndef RK_COMMON_H
#define RK_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RK_OK = 0, RK_ERR = -1 } rk_status_t;

#define RK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define RK_LIKELY(x) __builtin_expect(!!(x), 1)
#define RK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RK_LIKELY(x) (x)
#define RK_UNLIKELY(x) (x)
#endif

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t rk_now_ms(void);

/* Monotonic time in milliseconds (for timeouts and intervals, never stored). */
int64_t rk_mono_ms(void);

struct timespec;
/* The time ms from now on clock (for pthread_cond_timedwait's absolute deadline). */
void rk_timespec_in(struct timespec *ts, int clock, int64_t ms);

/* Bytes a formatted int64 needs, with its NUL. */
#define RK_INT_TEXT_MAX 21

/* Writes v in decimal into out (NUL-terminated, as "%lld" would); its length. */
size_t rk_format_int(int64_t v, char out[RK_INT_TEXT_MAX]);

/* Fills buf with n cryptographically random bytes; RK_ERR if the OS refuses. */
rk_status_t rk_random_bytes(void *buf, size_t n);

/* Folds the first n bytes of s to lower case (ASCII: header and host names). */
void rk_ascii_lower(char *s, size_t n);

/* Writes n bytes as lower-case hex plus a NUL into out (2n+1 bytes). */
void rk_hex(const void *bytes, size_t n, char *out);

/* The inverse of rk_hex: exactly 2n lower-case hex characters into n bytes.
 * RK_ERR when malformed. */
rk_status_t rk_unhex(const char *text, void *out, size_t n);

/* Formats an epoch time in ms as "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with NUL). */
void rk_format_time(int64_t epoch_ms, char out[32]);
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes with NUL). */
void rk_format_time_ms(int64_t epoch_ms, char out[32]);

/*
 * Parses an ISO 8601 UTC time, "2026-11-22T10:00:00Z" (a fraction of a second
 * and "+00:00" accepted), into epoch ms. RK_ERR when malformed.
 */
rk_status_t rk_parse_time(const char *text, int64_t *epoch_ms);

/* Compares two byte strings in time that depends only on their lengths. */
bool rk_const_time_eq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Replaces, in place, each byte of s that is not part of a well-formed UTF-8
 * sequence (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF)
 * with '?', so that text a client sent can be echoed in JSON.
 */
void rk_utf8_scrub(char *s);
/* Whether the len bytes at s are well-formed UTF-8 (as rk_utf8_scrub reads it). */
bool rk_utf8_valid(const char *s, size_t len);

/* FNV-1a (64 bits) of n bytes, continuing from h: RK_FNV1A_INIT to start. For in-process tables. */
#define RK_FNV1A_INIT 14695981039346656037ULL
uint64_t rk_fnv1a(uint64_t h, const void *data, size_t n);

/*
 * Checks of JSON another process wrote (cJSON values; NULL answers false):
 * rk_json_whole, a number holding a whole value in [min, 9e15], exact in a
 * double; rk_json_text, a string of at most max bytes (its text, or NULL).
 */
struct cJSON;
bool rk_json_whole(const struct cJSON *v, int64_t min);
const char *rk_json_text(const struct cJSON *v, size_t max);

#endif
