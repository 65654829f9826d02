/*
 * fuzz_jwt.c — bearer tokens: only a token signed with the key verifies.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rk_jwt_verifier_t *verifier;
    if (!verifier) {
        char err[128];
        verifier = rk_jwt_verifier_new("fuzzing-secret-fuzzing-secret", NULL, err, sizeof err);
    }
    rk_jwt_t *jwt = rk_jwt_verify(verifier, (const char *)data, size, 1795000000000LL);
    if (jwt) {
        char buf[64];
        (void)rk_jwt_claim(jwt, "sub", buf, sizeof buf);
        rk_jwt_free(jwt);
    }
    return 0;
}
