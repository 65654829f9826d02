/*
 * jwt.h — JSON Web Tokens from "Authorization: Bearer", believed only when
 * their signature verifies (HS256 with RATEKIT_JWT_SECRET, RS256 or ES256
 * with RATEKIT_JWT_PUBLIC_KEY) and they are within exp/nbf; otherwise the
 * jwt: parts of a key chain are skipped, so a forged token buys nothing.
 */
#ifndef RK_JWT_H
#define RK_JWT_H

#include "../common.h"

#define RK_JWT_MAX 8192 /* longest token considered */

typedef struct rk_jwt rk_jwt_t;
typedef struct rk_jwt_verifier rk_jwt_verifier_t;

/*
 * A verifier from a secret (HS256) and/or a PEM public key or a path to
 * one (RS256, ES256). NULL with a message when the key cannot be read;
 * a verifier with neither verifies nothing.
 */
rk_jwt_verifier_t *rk_jwt_verifier_new(const char *hs_secret, const char *public_key, char *err,
                                       size_t errlen);
void rk_jwt_verifier_free(rk_jwt_verifier_t *v);

/* Verifies token (len bytes) at now_ms; NULL when it does not verify. */
rk_jwt_t *rk_jwt_verify(const rk_jwt_verifier_t *v, const char *token, size_t len, int64_t now_ms);
/* A claim as text (strings as is, integers in decimal); NULL when absent. */
const char *rk_jwt_claim(const rk_jwt_t *jwt, const char *name, char *buf, size_t cap);
void rk_jwt_free(rk_jwt_t *jwt);

#endif
