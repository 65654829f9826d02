/*
 * fuzz_jwt.c — bearer tokens: only a token signed with the key verifies,
 * and the claims of one that verifies are read safely whatever they hold.
 *
 * The first byte picks the mode: even, the rest is a token as a client
 * sends it (the signature must stop it); odd, the rest is a payload that
 * the harness signs with the verifier's key, so that the claims reader
 * sees anything an identity provider could sign.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check/jwt.h"

#define SECRET "fuzzing-secret-fuzzing-secret-fuzzing"
#define NOW_MS 1795000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* base64url without padding; returns the length written at out. */
static size_t b64url(const uint8_t *in, size_t len, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[n++] = abc[(v >> 18) & 63];
        out[n++] = abc[(v >> 12) & 63];
        if (i + 1 < len)
            out[n++] = abc[(v >> 6) & 63];
        if (i + 2 < len)
            out[n++] = abc[v & 63];
    }
    return n;
}

/* header.payload.signature for the payload, signed HS256 with SECRET. */
static size_t sign(const uint8_t *payload, size_t len, char *out) {
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t n = b64url((const uint8_t *)header, sizeof header - 1, out);
    out[n++] = '.';
    n += b64url(payload, len, out + n);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)out, n, mac, &mac_len);
    out[n++] = '.';
    return n + b64url(mac, mac_len, out + n);
}

static void verify_and_read(const rk_jwt_verifier_t *verifier, const char *token, size_t len) {
    rk_jwt_t *jwt = rk_jwt_verify(verifier, token, len, NOW_MS);
    if (jwt) {
        char buf[64];
        (void)rk_jwt_claim(jwt, "sub", buf, sizeof buf);
        (void)rk_jwt_claim(jwt, "plan", buf, sizeof buf);
        rk_jwt_free(jwt);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rk_jwt_verifier_t *verifier;
    if (!verifier) {
        char err[128];
        verifier = rk_jwt_verifier_new(SECRET, NULL, err, sizeof err);
    }
    if (size == 0)
        return 0;
    if (!(data[0] & 1)) {
        verify_and_read(verifier, (const char *)data + 1, size - 1);
        return 0;
    }
    if (size - 1 > RK_JWT_MAX)
        return 0;
    char *token = malloc(2 * RK_JWT_MAX + 128); /* base64 of payload, header and mac */
    if (!token)
        return 0;
    verify_and_read(verifier, token, sign(data + 1, size - 1, token));
    free(token);
    return 0;
}
