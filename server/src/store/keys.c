/*
 * keys.c — the store form of a client key (rk_store_normalize_key).
 *
 * A client key goes into Redis key names (inside the {hash tag} of
 * `<prefix>:{<rule_id>:<key>}:<algorithm>`) and into the memory store's
 * identity, and it comes from the client: an IP, a user id, an API key, a
 * header. It is kept as it is when it is 1..RK_STORE_KEY_MAX bytes of
 * printable ASCII other than space, '{' and '}' (a brace would end or open
 * the Redis Cluster hash tag). Anything else — empty, too long, spaces,
 * control or non-ASCII bytes, braces — becomes "h:" and the hex of the
 * first 128 bits of its SHA-256.
 *
 * A key that itself starts with "h:" is hashed too, so no client can name
 * the hashed form of another client's key and share its counters.
 *
 * The hash is unkeyed on purpose: every ratekitd sharing one Redis must
 * turn the same client key into the same name. SHA-256 (not a fast
 * non-cryptographic hash) because the input is untrusted: finding two keys
 * that collide in 128 bits of SHA-256 is out of reach.
 */
#include "store.h"

#include <openssl/sha.h>
#include <string.h>

#define HASHED_PREFIX "h:"
#define HASHED_BYTES 16 /* of the SHA-256, written as 32 hex characters */

/* True when key can stand for itself in a store name. */
static bool key_is_plain(const char *key, size_t len) {
    if (!key || len == 0 || len > RK_STORE_KEY_MAX)
        return false;
    if (len >= 2 && key[0] == 'h' && key[1] == ':')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e || c == '{' || c == '}')
            return false;
    }
    return true;
}

/*
 * Writes the store form of key (len bytes, may hold any byte; NULL counts
 * as empty) into out, NUL-terminated: at most RK_STORE_KEY_MAX + 1 bytes.
 * Deterministic across processes and machines.
 */
void rk_store_normalize_key(const char *key, size_t len, char out[RK_STORE_KEY_MAX + 1]) {
    if (key_is_plain(key, len)) {
        memcpy(out, key, len);
        out[len] = '\0';
        return;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(key ? key : ""), key ? len : 0, digest);
    memcpy(out, HASHED_PREFIX, 2);
    rk_hex(digest, HASHED_BYTES, out + 2);
}

void rk_key_fold_header_names(char *key) {
    for (char *part = key; part;) {
        if (strncmp(part, "header:", 7) == 0)
            rk_ascii_lower(part + 7, strcspn(part + 7, ":|"));
        char *bar = strchr(part, '|');
        part = bar ? bar + 1 : NULL;
    }
}
