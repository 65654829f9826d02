/*
 * test_reply_arena.c — replies read through an arena are the replies
 * hiredis's own functions build, whole or fed a byte at a time; a check's
 * reply reuses the arena; a reply still held, a reply too big, a reply half
 * read and a context freed under a held reply all stay correct (ASan and
 * LeakSanitizer watch the memory).
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "store/reply_arena.h"

static const char CHECK_REPLY[] = "*5\r\n:1\r\n:99\r\n:60000\r\n:0\r\n:0\r\n";

/* Compares two replies, part by part. */
static void assert_same(const redisReply *want, const redisReply *got, const char *what) {
    cr_assert_not_null(got, "%s: no reply", what);
    cr_assert_eq(got->type, want->type, "%s: type %d, want %d", what, got->type, want->type);
    cr_assert_eq(got->integer, want->integer, "%s: integer", what);
    cr_assert_eq(got->len, want->len, "%s: len", what);
    if (want->str)
        cr_assert(got->str && memcmp(got->str, want->str, want->len + 1) == 0, "%s: str", what);
    cr_assert_eq(got->elements, want->elements, "%s: elements", what);
    for (size_t i = 0; i < want->elements; i++)
        assert_same(want->element[i], got->element[i], what);
}

/* Reads one reply of bytes, fed chunk bytes at a time (0: all at once). */
static redisReply *read_one(redisReader *r, const char *bytes, size_t len, size_t chunk) {
    void *reply = NULL;
    size_t at = 0;
    do {
        size_t n = chunk && len - at > chunk ? chunk : len - at;
        cr_assert_eq(redisReaderFeed(r, bytes + at, n), REDIS_OK);
        at += n;
        cr_assert_eq(redisReaderGetReply(r, &reply), REDIS_OK, "%s", r->errstr);
    } while (!reply && at < len);
    return reply;
}

static redisReader *arena_reader(void) {
    redisReader *r = redisReaderCreate();
    cr_assert_not_null(r);
    cr_assert(rk_reply_arena_attach(r));
    return r;
}

/* A reader and its arena (no reply held); frees a half-read reply through the arena's functions. */
static void arena_reader_free(redisReader *r) {
    rk_reply_reader_free(r);
}

Test(reply_arena, every_kind_of_reply_is_what_hiredis_builds) {
    char long_string[2048 + 16];
    char payload[2048];
    memset(payload, 'x', sizeof payload);
    int n = snprintf(long_string, sizeof long_string, "$%zu\r\n%.*s\r\n", sizeof payload,
                     (int)sizeof payload, payload);
    char wide[1024] = "*20\r\n";
    for (int i = 0; i < 20; i++)
        snprintf(wide + strlen(wide), sizeof wide - strlen(wide), ":%d\r\n", i * 7);
    const char *cases[] = {
        CHECK_REPLY,
        "*1\r\n:1\r\n",
        ":-42\r\n",
        "+OK\r\n",
        "-NOSCRIPT No matching script. Please use EVAL.\r\n",
        "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n",
        "$-1\r\n",
        "*-1\r\n",
        "*0\r\n",
        "$0\r\n\r\n",
        "*3\r\n*2\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*1\r\n-ERR inner\r\n",
        wide,
        long_string,
    };
    size_t lens[sizeof cases / sizeof *cases];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        lens[i] = cases[i] == long_string ? (size_t)n : strlen(cases[i]);
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        redisReader *plain = redisReaderCreate();
        redisReader *arena = arena_reader();
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            redisReply *want = read_one(plain, cases[i], lens[i], chunk);
            redisReply *got = read_one(arena, cases[i], lens[i], chunk);
            char what[64];
            snprintf(what, sizeof what, "case %zu, chunk %zu", i, chunk);
            assert_same(want, got, what);
            freeReplyObject(want);
            rk_reply_free(got);
        }
        redisReaderFree(plain);
        arena_reader_free(arena);
    }
}

Test(reply_arena, a_check_reply_is_built_in_the_same_place_each_time) {
    redisReader *r = arena_reader();
    redisReply *first = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
    redisReply *first_element = first->element[4];
    redisReply **first_vector = first->element;
    rk_reply_free(first);
    for (int i = 0; i < 3; i++) {
        redisReply *again = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
        cr_assert_eq(again, first, "the top object moved: it was allocated");
        cr_assert_eq(again->element, first_vector, "the element vector moved");
        cr_assert_eq(again->element[4], first_element, "an element moved");
        cr_assert_eq(again->element[1]->integer, 99);
        rk_reply_free(again);
    }
    arena_reader_free(r);
}

/*
 * The reply to a batch of 64 checks (one an error) does not fit the
 * arena at first: it is built partly on the heap, then the arena grows, and
 * the next ones are built in it. Every reading is the reply hiredis builds,
 * whole or fed a few bytes at a time, with a check's reply read while it is
 * held; and a check's reply is still built in one place each time.
 */
Test(reply_arena, a_batch_reply_reads_right_before_and_after_the_arena_grows) {
    char bytes[64 * 64];
    size_t len = (size_t)snprintf(bytes, sizeof bytes, "*64\r\n");
    for (int i = 0; i < 64; i++)
        len += (size_t)snprintf(bytes + len, sizeof bytes - len, "%s",
                                i == 17 ? "-WRONGTYPE Operation against a key\r\n"
                                        : "*6\r\n:1\r\n:99\r\n:60000\r\n:0\r\n:0\r\n"
                                          ":1796000000000\r\n");
    cr_assert_lt(len, sizeof bytes);
    redisReader *plain = redisReaderCreate();
    redisReply *want = read_one(plain, bytes, len, 0);
    redisReader *r = arena_reader();
    for (int round = 0; round < 4; round++) {
        redisReply *got = read_one(r, bytes, len, round == 2 ? 7 : 0);
        assert_same(want, got, "batch reply");
        if (round == 3) {
            redisReply *check = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
            cr_assert_eq(check->element[1]->integer, 99);
            assert_same(want, got, "the held batch reply");
            rk_reply_free(check);
        }
        rk_reply_free(got);
    }
    redisReply *first = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
    rk_reply_free(first);
    redisReply *again = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
    cr_assert_eq(again, first, "a check's reply moved after the arena grew");
    rk_reply_free(again);
    freeReplyObject(want);
    redisReaderFree(plain);
    arena_reader_free(r);
}

Test(reply_arena, a_reply_read_while_another_is_held_is_its_own) {
    redisReader *r = arena_reader();
    redisReply *held = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
    const char other[] = "*2\r\n:7\r\n$5\r\nhello\r\n";
    redisReply *next = read_one(r, other, strlen(other), 0);
    cr_assert_neq(next, held);
    cr_assert_eq(held->element[1]->integer, 99, "the held reply was overwritten");
    cr_assert_eq(next->element[0]->integer, 7);
    cr_assert_str_eq(next->element[1]->str, "hello");
    rk_reply_free(held); /* the older first: the newer one is on the heap */
    cr_assert_str_eq(next->element[1]->str, "hello");
    rk_reply_free(next);
    redisReply *third = read_one(r, CHECK_REPLY, strlen(CHECK_REPLY), 0);
    cr_assert_eq(third, held, "the arena was not given back");
    rk_reply_free(third);
    arena_reader_free(r);
}

/* Feeds bytes that make no whole reply, reads with the result want, frees the reader. */
static void read_nothing_then_free(const char *bytes, int want) {
    redisReader *r = arena_reader();
    void *reply = NULL;
    cr_assert_eq(redisReaderFeed(r, bytes, strlen(bytes)), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(r, &reply), want);
    cr_assert_null(reply);
    arena_reader_free(r); /* LeakSanitizer: nothing of the partial reply is left */
}

Test(reply_arena, a_half_read_reply_is_freed_with_its_reader) {
    read_nothing_then_free("*5\r\n:1\r\n:2\r\n", REDIS_OK);
}

Test(reply_arena, a_protocol_error_leaves_nothing_behind) {
    read_nothing_then_free("*3\r\n:1\r\n$2\r\nab\r\n!oops\r\n", REDIS_ERR);
}

Test(reply_arena, a_context_freed_under_a_held_reply_leaves_the_reply_whole) {
    /* A context that never connected still has a reader (hiredis makes it first). */
    redisContext *ctx = redisConnectUnix("/nonexistent/ratekit-test.sock");
    cr_assert_not_null(ctx);
    cr_assert(rk_reply_arena_attach(ctx->reader));
    cr_assert_eq(redisReaderFeed(ctx->reader, CHECK_REPLY, strlen(CHECK_REPLY)), REDIS_OK);
    void *reply = NULL;
    cr_assert_eq(redisGetReplyFromReader(ctx, &reply), REDIS_OK);
    cr_assert_not_null(reply);
    rk_reply_context_free(ctx);
    redisReply *r = reply;
    cr_assert_eq(r->element[2]->integer, 60000, "the reply went with its context");
    rk_reply_free(r); /* and the arena with it: LeakSanitizer checks */
}

Test(reply_arena, context_free_takes_a_plain_context_and_an_arena_one) {
    redisContext *plain = redisConnectUnix("/nonexistent/ratekit-test.sock");
    redisContext *arena = redisConnectUnix("/nonexistent/ratekit-test.sock");
    cr_assert(plain && arena);
    cr_assert(rk_reply_arena_attach(arena->reader));
    redisContext *both[] = {plain, arena};
    for (int i = 0; i < 2; i++) {
        void *reply = NULL;
        cr_assert_eq(redisReaderFeed(both[i]->reader, "+OK\r\n", 5), REDIS_OK);
        cr_assert_eq(redisGetReplyFromReader(both[i], &reply), REDIS_OK);
        cr_assert_str_eq(((redisReply *)reply)->str, "OK");
        if (both[i] == arena)
            rk_reply_free(reply);
        else
            freeReplyObject(reply);
    }
    rk_reply_context_free(plain);
    rk_reply_context_free(arena);
}

Test(reply_arena, a_plain_copy_is_freed_by_hiredis) {
    redisReader *r = arena_reader();
    const char nested[] =
        "*4\r\n:5\r\n*2\r\n$2\r\nok\r\n$-1\r\n-MOVED 3999 127.0.0.1:6381\r\n*0\r\n";
    redisReply *got = read_one(r, nested, strlen(nested), 0);
    redisReply *copy = rk_reply_plain_copy(got);
    cr_assert_not_null(copy);
    assert_same(got, copy, "copy");
    cr_assert_neq(copy->element[1], got->element[1], "the copy shares the arena's objects");
    rk_reply_free(got);
    cr_assert_str_eq(copy->element[1]->element[0]->str, "ok", "the copy went with the arena");
    freeReplyObject(copy); /* ASan: every part of it came from malloc */
    arena_reader_free(r);
}
