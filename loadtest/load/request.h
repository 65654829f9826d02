/*
 * request.h — the bytes of one HTTP/1.1 request of the run's target, for
 * one key index.
 */
#ifndef LT_REQUEST_H
#define LT_REQUEST_H

#include <stddef.h>

#include "options.h"

#define LT_REQUEST_MAX 1024

/*
 * Writes the request for key index `key` to url into out (LT_REQUEST_MAX
 * bytes); returns its length.
 *  check    POST <path|/v1/check> {"rule":R,"key":"k<key>"} (or the fixed --key)
 *  context  POST <path|/v1/check> {"request":{"method":"GET","path":P,"ip":<ip>,...}}
 *  auth     GET <path|/v1/auth>, X-Original-Method: GET, X-Original-URI: P,
 *           X-Forwarded-For: <ip>
 *  get      GET <path|/>
 *  lease    POST /v1/acquire {"rule":R,"key":"k<key>"}, or, when the
 *           connection holds a lease, POST /v1/release {"lease":<lease>}
 * where <ip> is 10.a.b.c, distinct for each key index. lease is the text of
 * the lease the connection holds, as its acquire's answer wrote it ("" or
 * NULL for none).
 */
size_t lt_request_build(const lt_options_t *o, const lt_url_t *url, long key, const char *lease,
                        char *out);

#endif
