/*
 * tokens.h — API tokens of the admin plane, each with a role: admin
 * (everything), editor (rules, lists, counters) or viewer (read only).
 *
 * A token reads "rk_<id>_<secret>": the id (RK_TOKEN_ID_LEN hex) is public
 * and names the token; the secret (RK_TOKEN_SECRET_LEN hex, 32 random bytes)
 * is answered once at creation and stored only as SHA-256(salt || secret)
 * with a per-token random salt. The bootstrap admin token (RATEKIT_ADMIN_TOKEN
 * or the generated one) is accepted beside them.
 *
 * Lookups never touch SQLite: they read an immutable in-memory snapshot
 * (id -> salt, hash, role, expiry), found by the id and then compared in
 * constant time. A change made here rebuilds the snapshot before it is
 * answered; a change made by another process sharing the file is noticed by
 * PRAGMA data_version within RK_TOKENS_POLL_MS.
 */
#ifndef RK_TOKENS_H
#define RK_TOKENS_H

#include <cjson/cJSON.h>

#include "../http/http.h"

#define RK_TOKEN_ID_LEN 12     /* hex characters of the public id */
#define RK_TOKEN_SECRET_LEN 64 /* hex characters of the secret (32 bytes) */
#define RK_TOKEN_LEN (3 + RK_TOKEN_ID_LEN + 1 + RK_TOKEN_SECRET_LEN)
#define RK_TOKEN_NAME_MAX 64
#define RK_TOKENS_MAX 10000
#define RK_TOKENS_POLL_MS 200

/* Keeps a copy of the bootstrap admin token (compared in constant time). */
void rk_tokens_set_bootstrap(const char *token);

/*
 * Opens the tokens of the SQLite file (already migrated by rk_rules_open),
 * loads the first snapshot and starts the thread that notices other
 * processes' changes and records when tokens were last used.
 */
rk_status_t rk_tokens_open(const char *db_path, char *err, size_t errlen);
void rk_tokens_close(void);

/*
 * The token resolver of the admin plane (rk_token_resolver_t): the role of
 * token[0..len), and its name written into actor (RK_ACTOR_BOOTSTRAP for the
 * bootstrap token). RK_ROLE_NONE when unknown, revoked or expired. Never blocks.
 */
rk_role_t rk_tokens_resolve(const char *token, size_t len, char *actor, size_t actorlen);

/*
 * The actors ratekit names itself in the rule history and in created_by:
 * the bootstrap admin token's, and that of changes imported from Redis
 * (rules/sync.c). No token may be named so, or its changes would pass for
 * theirs.
 */
#define RK_ACTOR_BOOTSTRAP "admin"
#define RK_ACTOR_SYNC "sync"
/* Whether name is one of them, ignoring case and surrounding spaces. */
bool rk_token_name_reserved(const char *name);

/* "admin", "editor", "viewer"; and back (RK_ROLE_NONE when none of them). */
const char *rk_role_name(rk_role_t role);
rk_role_t rk_role_parse(const char *name);

typedef enum {
    RK_TOKENS_OK = 0,
    RK_TOKENS_NOT_FOUND,
    RK_TOKENS_FULL, /* RK_TOKENS_MAX tokens exist */
    RK_TOKENS_ERROR /* SQLite failed */
} rk_tokens_status_t;

/*
 * Creates a token. expires_ms 0: never. *out receives the token as answered
 * once: {"id", "name", "role", "token", "created_at", "expires_at"} (a new
 * cJSON owned by the caller); the secret is kept nowhere else.
 */
rk_tokens_status_t rk_tokens_create(const char *name, rk_role_t role, int64_t expires_ms,
                                    const char *created_by, cJSON **out);
/* Every token, without secrets, newest first: a new cJSON array. */
rk_tokens_status_t rk_tokens_list(cJSON **out);
/* Revokes a token: refused by this process as soon as this returns. */
rk_tokens_status_t rk_tokens_delete(const char *id);

/*
 * For instances that share only Redis (rules/sync.c). The hook is called
 * after every create and delete made here (never by rk_tokens_replace), on
 * the calling thread, and must not block. rk_tokens_export answers every
 * token as stored (id, name, role, salt, hash, times; never a secret) as a
 * new cJSON array; rk_tokens_replace makes the table exactly that set in one
 * transaction (last-used times kept) and reloads the snapshot.
 */
void rk_tokens_set_change_hook(void (*fn)(void));
cJSON *rk_tokens_export(void);
rk_tokens_status_t rk_tokens_replace(const cJSON *tokens);

/* Admin API routes for /api/v1/tokens (tokens_api.c). */
extern const rk_route_t rk_tokens_routes[];
extern const size_t rk_tokens_routes_len;

#endif
