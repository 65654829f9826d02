/*
 * test_store_keys.c — the store form of client keys (server/src/store/keys.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "store/store.h"

static const char *normalized(const char *key, size_t len, char out[RK_STORE_KEY_MAX + 1]) {
    memset(out, 'X', RK_STORE_KEY_MAX + 1);
    rk_store_normalize_key(key, len, out);
    return out;
}

static void assert_kept(const char *key) {
    char out[RK_STORE_KEY_MAX + 1];
    cr_assert_str_eq(normalized(key, strlen(key), out), key);
}

TestSuite(store_keys);

Test(store_keys, keeps_printable_keys_as_they_are) {
    assert_kept("203.0.113.7");
    assert_kept("ip:203.0.113.7");
    assert_kept("ip:2001:db8::1");
    assert_kept("user:42|GET:/api/*");
    assert_kept("a");
    assert_kept("!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az|~");
    char max[RK_STORE_KEY_MAX + 1];
    memset(max, 'k', RK_STORE_KEY_MAX);
    max[RK_STORE_KEY_MAX] = '\0';
    assert_kept(max);
}

Test(store_keys, hashes_a_key_longer_than_the_maximum) {
    char key[RK_STORE_KEY_MAX + 1], out[RK_STORE_KEY_MAX + 1];
    memset(key, 'k', sizeof key);
    /* SHA-256 of 201 'k', first 16 bytes. */
    cr_assert_str_eq(normalized(key, sizeof key, out), "h:ebf0ead0a3b837bc388d6a36c93833ff");
}

Test(store_keys, hashes_keys_that_are_not_printable_ascii_or_hold_braces) {
    char out[RK_STORE_KEY_MAX + 1];
    cr_assert_str_eq(normalized("with space", 10, out), "h:b8b8f25a5fc711caea1cfebfe02359e3");
    cr_assert_str_eq(normalized("{tag}", 5, out), "h:5ae20b1c830f1111fee635aa2cd68546");
    cr_assert_str_eq(normalized("caf\xc3\xa9", 5, out), "h:850f7dc43910ff890f8879c0ed26fe69");
    cr_assert_str_eq(normalized("a\0b", 3, out), "h:59b271ae1bbcb1d31d41929817f4b16f");
    cr_assert_eq(strncmp(normalized("tab\there", 8, out), "h:", 2), 0);
    cr_assert_eq(strncmp(normalized("del\x7f", 4, out), "h:", 2), 0);
    cr_assert_eq(strncmp(normalized("open{", 5, out), "h:", 2), 0);
}

Test(store_keys, hashes_the_empty_key) {
    char out[RK_STORE_KEY_MAX + 1];
    cr_assert_str_eq(normalized("", 0, out), "h:e3b0c44298fc1c149afbf4c8996fb924");
    cr_assert_str_eq(normalized(NULL, 0, out), "h:e3b0c44298fc1c149afbf4c8996fb924");
}

Test(store_keys, a_key_cannot_pose_as_the_hash_of_another) {
    char out[RK_STORE_KEY_MAX + 1];
    /* "with space" hashes to this; sending the hash itself must not share its counters. */
    const char *forged = "h:b8b8f25a5fc711caea1cfebfe02359e3";
    cr_assert_str_neq(normalized(forged, strlen(forged), out), forged);
    cr_assert_str_eq(normalized("h:abc", 5, out), "h:8e16ea99f5c02c7d05afceaca23fd909");
    assert_kept("h");
    assert_kept("hx:abc");
}

Test(store_keys, is_deterministic_and_tells_long_keys_apart) {
    char a[300], b[300], out_a[RK_STORE_KEY_MAX + 1], out_b[RK_STORE_KEY_MAX + 1];
    memset(a, 'z', sizeof a);
    memcpy(b, a, sizeof b);
    b[299] = 'y';
    normalized(a, sizeof a, out_a);
    normalized(a, sizeof a, out_b);
    cr_assert_str_eq(out_a, out_b);
    normalized(b, sizeof b, out_b);
    cr_assert_str_neq(out_a, out_b, "keys differing in their last byte");
    cr_assert_eq(strlen(out_a), 34);
}
