/*
 * identity.h — whom a rule counts a request by: the rule's key chain
 * ("user", "api_key", "ip", "header:X-Tenant", "jwt:sub", "route",
 * "global", and tuples such as "ip+route"), resolved against a request.
 * The first part of the chain that the request has is used.
 */
#ifndef RK_IDENTITY_H
#define RK_IDENTITY_H

#include "../rules/rules.h"
#include "jwt.h"

#define RK_KEY_TEXT_MAX 512 /* a resolved key, before the store hashes long ones */

/* What a key is resolved from. */
typedef struct {
    const char *ip;     /* the client's key text (rk_ip_key), or NULL */
    const char *method; /* upper-case */
    const char *route;  /* the rule's path pattern, or the request path */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
    const rk_jwt_t *jwt; /* verified claims, or NULL */
} rk_identity_t;

/*
 * Resolves the chain into out ("ip:203.0.113.7", "user:42|route:GET:/x"):
 * the first part the request has, else its address (ip); false when it has
 * none of them.
 */
bool rk_key_resolve(const rk_key_part_t *chain, size_t nparts, const rk_identity_t *id, char *out,
                    size_t cap);

#endif
