/*
 * identity.c — see identity.h.
 */
#include "identity.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* The identifier of an API key: a hash, so the secret never becomes a key name. */
static void api_key_id(const char *key, char out[33]) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), digest);
    rk_hex(digest, 16, out);
}

/* Writes one component's value ("ip:1.2.3.4"); false when the request lacks it. */
static bool component_value(const rk_key_atom_t *c, const rk_identity_t *id, char *out,
                            size_t cap) {
    const char *v = NULL;
    char buf[128];
    switch (c->source) {
    case RK_KEY_IP:
        if (!id->ip || !*id->ip)
            return false;
        return snprintf(out, cap, "ip:%s", id->ip) < (int)cap;
    case RK_KEY_USER:
        v = id->header ? id->header(id->header_ctx, "x-user-id") : NULL;
        return v && *v && snprintf(out, cap, "user:%s", v) < (int)cap;
    case RK_KEY_API_KEY: {
        v = id->header ? id->header(id->header_ctx, "x-api-key") : NULL;
        if (!v || !*v)
            return false;
        char hashed[33];
        api_key_id(v, hashed);
        return snprintf(out, cap, "api_key:%s", hashed) < (int)cap;
    }
    case RK_KEY_HEADER:
        v = id->header ? id->header(id->header_ctx, c->name) : NULL;
        if (!v || !*v || snprintf(out, cap, "header:%s:%s", c->name, v) >= (int)cap)
            return false;
        for (char *p = out + 7; *p && *p != ':'; p++) /* header names are case-blind */
            *p = (char)tolower((unsigned char)*p);
        return true;
    case RK_KEY_JWT:
        v = rk_jwt_claim(id->jwt, c->name, buf, sizeof buf);
        return v && snprintf(out, cap, "jwt:%s:%s", c->name, v) < (int)cap;
    case RK_KEY_ROUTE:
        return snprintf(out, cap, "route:%s:%s", id->method ? id->method : "",
                        id->route ? id->route : "") < (int)cap;
    case RK_KEY_GLOBAL:
        return snprintf(out, cap, "global") < (int)cap;
    }
    return false;
}

bool rk_key_resolve(const rk_key_part_t *chain, size_t nparts, const rk_identity_t *id, char *out,
                    size_t cap) {
    for (size_t i = 0; i < nparts; i++) {
        const rk_key_part_t *part = &chain[i];
        size_t used = 0;
        bool present = true;
        for (size_t k = 0; k < part->natoms && present; k++) {
            if (k > 0) {
                if (used + 1 >= cap)
                    return false;
                out[used++] = '|';
            }
            present = component_value(&part->atoms[k], id, out + used, cap - used);
            used += present ? strlen(out + used) : 0;
        }
        if (present && part->natoms > 0)
            return true;
    }
    /* None is present: the client's address, so that leaving a header or a
     * token out (or forging one) never escapes a rule. */
    const rk_key_atom_t address = {.source = RK_KEY_IP};
    return component_value(&address, id, out, cap);
}
