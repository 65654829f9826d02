/*
 * response.h — reads one HTTP/1.1 response from the front of a buffer:
 * status, body (Content-Length, chunked, or none for 1xx/204/304) and
 * whether the server will close the connection after it.
 */
#ifndef LT_RESPONSE_H
#define LT_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int status;
    const char *body; /* inside the buffer; for a chunked body, its raw chunks */
    size_t body_len;
    bool close; /* "Connection: close", or HTTP/1.0 without keep-alive */
} lt_response_t;

/*
 * Parses buf[0..len). Returns the length of the whole response when it is
 * complete, 0 when more bytes are needed, and -1 when it is not HTTP or its
 * length cannot be known (a body delimited by the connection's end).
 */
long lt_response_parse(const char *buf, size_t len, lt_response_t *out);

/* Whether a check answer's body says "allowed":true (or false). */
bool lt_response_says(const lt_response_t *r, bool allowed);

/* Whether a release answer's body says "released":true. */
bool lt_response_released(const lt_response_t *r);

/*
 * Copies the text of an acquire answer's "lease" member, as written
 * (escapes kept, so that it goes back into a JSON string unchanged), into
 * out[cap]. Returns false, with out empty, when there is none or it does
 * not fit.
 */
bool lt_response_lease(const lt_response_t *r, char *out, size_t cap);

#endif
