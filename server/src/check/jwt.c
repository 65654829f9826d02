/*
 * jwt.c — see jwt.h. Signatures are checked with OpenSSL; the header's
 * "alg" must be the one the configured key is for ("none" is never
 * accepted, and an HS256 token is never checked with a public key).
 */
#include "jwt.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS256_SECRET_MIN 32 /* bytes: the hash's size (RFC 7518 3.2) */
#define RSA_BITS_MIN 2048   /* RFC 7518 3.3 */

struct rk_jwt_verifier {
    char *secret;
    size_t secret_len;
    EVP_PKEY *pkey;
    int pkey_type; /* EVP_PKEY_RSA or EVP_PKEY_EC */
};

struct rk_jwt {
    cJSON *claims;
};

/* Decodes base64url (no padding) into out; returns the length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap) {
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

static EVP_PKEY *load_public_key(const char *text, char *err, size_t errlen) {
    BIO *bio = NULL;
    if (!strncmp(text, "-----BEGIN", 10))
        bio = BIO_new_mem_buf(text, -1);
    else
        bio = BIO_new_file(text, "r");
    if (!bio) {
        snprintf(err, errlen, "RATEKIT_JWT_PUBLIC_KEY: cannot read the public key file %s", text);
        return NULL;
    }
    EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!key)
        snprintf(err, errlen, "RATEKIT_JWT_PUBLIC_KEY: not a PEM public key (RSA or EC P-256)");
    return key;
}

/*
 * Whether key can verify the tokens ratekit takes: RSA of 2048 bits or more
 * (RS256), or EC on P-256 (ES256, whose signatures are 64 bytes). Any other
 * key would start and then verify no token at all, every jwt: part falling
 * through unseen.
 */
static bool usable_key(EVP_PKEY *key, char *err, size_t errlen) {
    int type = EVP_PKEY_get_base_id(key);
    if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= RSA_BITS_MIN)
        return true;
    char curve[64] = "";
    if (type == EVP_PKEY_EC && EVP_PKEY_get_group_name(key, curve, sizeof curve, NULL) == 1 &&
        (!strcmp(curve, "prime256v1") || !strcmp(curve, "P-256")))
        return true;
    if (type == EVP_PKEY_RSA)
        snprintf(err, errlen,
                 "RATEKIT_JWT_PUBLIC_KEY: an RSA key of %d bits; RS256 needs %d or more",
                 EVP_PKEY_get_bits(key), RSA_BITS_MIN);
    else if (type == EVP_PKEY_EC)
        snprintf(err, errlen, "RATEKIT_JWT_PUBLIC_KEY: an EC key on %s; ES256 needs P-256",
                 curve[0] ? curve : "an unnamed curve");
    else
        snprintf(err, errlen,
                 "RATEKIT_JWT_PUBLIC_KEY: the key must be RSA (RS256) or EC P-256 (ES256)");
    return false;
}

rk_jwt_verifier_t *rk_jwt_verifier_new(const char *hs_secret, const char *public_key, char *err,
                                       size_t errlen) {
    rk_jwt_verifier_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (hs_secret && *hs_secret) {
        v->secret_len = strlen(hs_secret);
        if (v->secret_len < HS256_SECRET_MIN) {
            snprintf(err, errlen,
                     "RATEKIT_JWT_SECRET: HS256 needs a secret of at least %d bytes (RFC 7518 "
                     "3.2: anyone can guess a shorter one offline); this one has %zu",
                     HS256_SECRET_MIN, v->secret_len);
            rk_jwt_verifier_free(v);
            return NULL;
        }
        v->secret = strdup(hs_secret);
    }
    if (public_key && *public_key) {
        v->pkey = load_public_key(public_key, err, errlen);
        if (!v->pkey || !usable_key(v->pkey, err, errlen)) {
            rk_jwt_verifier_free(v);
            return NULL;
        }
        v->pkey_type = EVP_PKEY_get_base_id(v->pkey);
    }
    return v;
}

void rk_jwt_verifier_free(rk_jwt_verifier_t *v) {
    if (!v)
        return;
    if (v->secret)
        OPENSSL_cleanse(v->secret, v->secret_len);
    free(v->secret);
    EVP_PKEY_free(v->pkey);
    free(v);
}

static bool verify_hs256(const rk_jwt_verifier_t *v, const char *signed_part, size_t len,
                         const unsigned char *sig, size_t siglen) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!v->secret || siglen != 32)
        return false;
    if (!HMAC(EVP_sha256(), v->secret, (int)v->secret_len, (const unsigned char *)signed_part, len,
              mac, &maclen))
        return false;
    return maclen == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
}

/* ES256 signatures are R||S; OpenSSL wants DER. */
static int es256_to_der(const unsigned char *sig, unsigned char *der, size_t cap) {
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    int n = i2d_ECDSA_SIG(es, NULL);
    unsigned char *p = der;
    if (n <= 0 || (size_t)n > cap)
        n = -1;
    else
        i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    return n;
}

static bool verify_pkey(const rk_jwt_verifier_t *v, int want_type, const char *signed_part,
                        size_t len, const unsigned char *sig, size_t siglen) {
    if (!v->pkey || v->pkey_type != want_type)
        return false;
    unsigned char der[80];
    if (want_type == EVP_PKEY_EC) {
        if (siglen != 64)
            return false;
        int n = es256_to_der(sig, der, sizeof der);
        if (n < 0)
            return false;
        sig = der;
        siglen = (size_t)n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)signed_part, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Whether a numeric claim, when present, is a number satisfying the test. */
static bool time_claim_ok(const cJSON *claims, const char *name, double now_s, bool is_exp) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!c)
        return true;
    if (!cJSON_IsNumber(c))
        return false;
    return is_exp ? now_s < c->valuedouble : now_s >= c->valuedouble;
}

rk_jwt_t *rk_jwt_verify(const rk_jwt_verifier_t *v, const char *token, size_t len, int64_t now_ms) {
    if (!v || len == 0 || len > RK_JWT_MAX)
        return NULL;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return NULL;
    static _Thread_local unsigned char header[RK_JWT_MAX], payload[RK_JWT_MAX + 1];
    unsigned char sig[512];
    long hlen = b64url_decode(token, (size_t)(dot1 - token), header, sizeof header - 1);
    long plen = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload - 1);
    long slen = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof sig);
    if (hlen <= 0 || plen <= 0 || slen <= 0)
        return NULL;
    cJSON *hdr = cJSON_ParseWithLength((const char *)header, (size_t)hlen);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    const char *signed_part = token;
    size_t signed_len = (size_t)(dot2 - token);
    bool ok = false;
    if (cJSON_IsString(alg)) {
        if (!strcmp(alg->valuestring, "HS256"))
            ok = verify_hs256(v, signed_part, signed_len, sig, (size_t)slen);
        else if (!strcmp(alg->valuestring, "RS256"))
            ok = verify_pkey(v, EVP_PKEY_RSA, signed_part, signed_len, sig, (size_t)slen);
        else if (!strcmp(alg->valuestring, "ES256"))
            ok = verify_pkey(v, EVP_PKEY_EC, signed_part, signed_len, sig, (size_t)slen);
    }
    cJSON_Delete(hdr);
    if (!ok)
        return NULL;
    cJSON *claims = cJSON_ParseWithLength((const char *)payload, (size_t)plen);
    double now_s = (double)now_ms / 1000.0;
    if (!cJSON_IsObject(claims) || !time_claim_ok(claims, "exp", now_s, true) ||
        !time_claim_ok(claims, "nbf", now_s, false)) {
        cJSON_Delete(claims);
        return NULL;
    }
    rk_jwt_t *jwt = malloc(sizeof *jwt);
    if (!jwt) {
        cJSON_Delete(claims);
        return NULL;
    }
    jwt->claims = claims;
    return jwt;
}

const char *rk_jwt_claim(const rk_jwt_t *jwt, const char *name, char *buf, size_t cap) {
    if (!jwt)
        return NULL;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(jwt->claims, name);
    if (cJSON_IsString(c) && c->valuestring[0])
        return c->valuestring;
    /* An integer only, within long long's range [-2^63, 2^63): converting
     * a double outside it (1e300 in a signed token) is undefined behaviour. */
    const double two_to_63 = 9223372036854775808.0;
    if (cJSON_IsNumber(c) && c->valuedouble >= -two_to_63 && c->valuedouble < two_to_63 &&
        c->valuedouble == (double)(long long)c->valuedouble) {
        snprintf(buf, cap, "%lld", (long long)c->valuedouble);
        return buf;
    }
    return NULL;
}

void rk_jwt_free(rk_jwt_t *jwt) {
    if (!jwt)
        return;
    cJSON_Delete(jwt->claims);
    free(jwt);
}
