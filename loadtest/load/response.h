/*
 * response.h — reads one HTTP/1.1 response from the front of a buffer:
 * status, body (Content-Length, chunked, to the close, or none for
 * 1xx/204/304) and whether the server will close the connection after it.
 */
#ifndef LT_RESPONSE_H
#define LT_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#define LT_RESPONSE_MAX (1024 * 1024) /* an answer longer than this is an error */

typedef struct {
    int status;
    const char *body; /* inside the buffer; a chunked body's data joined there */
    size_t body_len;
    bool close; /* "Connection: close", or HTTP/1.0 without keep-alive */
} lt_response_t;

/*
 * Parses buf[0..len). Returns the length of the whole response when it is
 * complete, 0 when more bytes are needed, and -1 when it is not HTTP (a
 * head whose lines end in a bare LF included) or announces a body longer
 * than LT_RESPONSE_MAX (Content-Length or a chunk size). A body with
 * neither a Content-Length nor chunks runs to the connection's close: it
 * is complete when at_eof (the server closed after buf), and then close is
 * set. A complete chunked body's data is joined in place, within the
 * response's bytes.
 */
long lt_response_parse(char *buf, size_t len, bool at_eof, lt_response_t *out);

/*
 * Whether a check answer says "allowed":true (or false): the member of the
 * answer's object itself, not one of its "results" (a request is denied
 * when any enforcing rule denies it, whatever the others say).
 */
bool lt_response_says(const lt_response_t *r, bool allowed);

/* Whether a release answer says "released":true (its top-level member). */
bool lt_response_released(const lt_response_t *r);

/*
 * Copies the text of an acquire answer's "lease" member, as written
 * (escapes kept, so that it goes back into a JSON string unchanged), into
 * out[cap]. Returns false, with out empty, when there is none or it does
 * not fit.
 */
bool lt_response_lease(const lt_response_t *r, char *out, size_t cap);

#endif
