/*
 * reply_arena.h — hiredis replies built without an allocation per reply.
 *
 * hiredis's own reply functions allocate every object: a check's reply (an
 * array of five integers) costs seven callocs and seven frees. A reader
 * given an arena builds one reply at a time in a block of its own instead,
 * kept from reply to reply, and grown to the largest reply it met (up to a
 * batch of 512 checks' replies). A reply that does not fit, or that is read
 * while the previous one is still held, is built on the heap, as hiredis
 * would.
 *
 * A reply read through an arena is freed with rk_reply_free(), never
 * freeReplyObject(), and its context with rk_reply_context_free(), which
 * may run while a reply is still held: the arena then goes with that reply.
 */
#ifndef RK_STORE_REPLY_ARENA_H
#define RK_STORE_REPLY_ARENA_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

/* Gives the reader an arena; false when out of memory (the reader is unchanged). */
bool rk_reply_arena_attach(redisReader *reader);

/* Frees a reply read through an arena, or built on the heap by one (NULL is fine). */
void rk_reply_free(redisReply *reply);

/*
 * A copy of a reply made as hiredis makes its own (freed with
 * freeReplyObject()), for a caller outside the store; NULL when out of memory.
 */
redisReply *rk_reply_plain_copy(const redisReply *reply);

/* redisFree() for a context whose reader may have an arena (NULL is fine). */
void rk_reply_context_free(redisContext *ctx);

/* redisReaderFree() for a reader that may have an arena (NULL is fine). */
void rk_reply_reader_free(redisReader *reader);

#endif
