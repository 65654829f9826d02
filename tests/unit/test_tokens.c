/*
 * test_tokens.c — API tokens: a created token resolves to its role and name,
 * a forged or revoked one does not, expiry is honoured, the bootstrap admin
 * token works, a change made by another connection is noticed, and the
 * secret is stored only as a hash.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/tokens.h"
#include "rules/rules_db.h"

static char dir[64];
static char path[128];

static void open_tokens(void) {
    snprintf(dir, sizeof dir, "/tmp/ratekit-tokens-XXXXXX");
    if (!mkdtemp(dir))
        cr_fatal("mkdtemp failed");
    snprintf(path, sizeof path, "%s/ratekit.db", dir);
    char err[256];
    sqlite3 *conn = rk_rules_db_connect(path, true, err, sizeof err); /* creates and migrates */
    if (!conn)
        cr_fatal("cannot create the database: %s", err);
    sqlite3_close(conn);
    if (rk_tokens_open(path, err, sizeof err) != RK_OK)
        cr_fatal("rk_tokens_open: %s", err);
}

static void close_tokens(void) {
    rk_tokens_close();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

TestSuite(tokens, .init = open_tokens, .fini = close_tokens);

/* Creates a token and copies its secret text and id out; fails the test otherwise. */
static void create(const char *name, rk_role_t role, int64_t expires_ms, char *token, char *id) {
    cJSON *out = NULL;
    cr_assert_eq(rk_tokens_create(name, role, expires_ms, "test", &out), RK_TOKENS_OK);
    snprintf(token, RK_TOKEN_LEN + 1, "%s", cJSON_GetObjectItem(out, "token")->valuestring);
    snprintf(id, RK_TOKEN_ID_LEN + 1, "%s", cJSON_GetObjectItem(out, "id")->valuestring);
    cJSON_Delete(out);
}

static rk_role_t resolve(const char *token, char *actor) {
    return rk_tokens_resolve(token, strlen(token), actor, RK_TOKEN_NAME_MAX + 1);
}

Test(tokens, created_token_resolves_to_its_role_and_name) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1], actor[RK_TOKEN_NAME_MAX + 1] = "";
    create("deploy-bot", RK_ROLE_EDITOR, 0, token, id);
    cr_assert_eq(strlen(token), RK_TOKEN_LEN);
    cr_assert_eq(strncmp(token + 3, id, RK_TOKEN_ID_LEN), 0);
    cr_assert_eq(resolve(token, actor), RK_ROLE_EDITOR);
    cr_assert_str_eq(actor, "deploy-bot");
}

Test(tokens, forged_secret_or_unknown_id_is_refused) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1], actor[RK_TOKEN_NAME_MAX + 1];
    create("ci", RK_ROLE_ADMIN, 0, token, id);
    char forged[RK_TOKEN_LEN + 1];
    memcpy(forged, token, sizeof forged);
    forged[RK_TOKEN_LEN - 1] = forged[RK_TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
    cr_assert_eq(resolve(forged, actor), RK_ROLE_NONE);
    memcpy(forged, token, sizeof forged);
    forged[3] = forged[3] == 'a' ? 'b' : 'a';
    cr_assert_eq(resolve(forged, actor), RK_ROLE_NONE);
    cr_assert_eq(rk_tokens_resolve(token, RK_TOKEN_LEN - 1, actor, sizeof actor), RK_ROLE_NONE);
    cr_assert_eq(resolve("", actor), RK_ROLE_NONE);
}

Test(tokens, revoked_token_is_refused_at_once) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1], actor[RK_TOKEN_NAME_MAX + 1];
    create("ci", RK_ROLE_VIEWER, 0, token, id);
    cr_assert_eq(resolve(token, actor), RK_ROLE_VIEWER);
    cr_assert_eq(rk_tokens_delete(id), RK_TOKENS_OK);
    cr_assert_eq(resolve(token, actor), RK_ROLE_NONE);
    cr_assert_eq(rk_tokens_delete(id), RK_TOKENS_NOT_FOUND);
}

Test(tokens, expired_token_is_refused) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1], actor[RK_TOKEN_NAME_MAX + 1];
    /* a second of life: creating and resolving a token takes a while on a
     * loaded machine under the sanitizers (150 ms was not always enough) */
    int64_t expires = rk_now_ms() + 1000;
    create("temp", RK_ROLE_VIEWER, expires, token, id);
    cr_assert_eq(resolve(token, actor), RK_ROLE_VIEWER);
    while (rk_now_ms() <= expires + 50)
        usleep(20 * 1000);
    cr_assert_eq(resolve(token, actor), RK_ROLE_NONE);
}

Test(tokens, bootstrap_token_is_admin) {
    char actor[RK_TOKEN_NAME_MAX + 1];
    rk_tokens_set_bootstrap("bootstrap-token-0123456789");
    cr_assert_eq(resolve("bootstrap-token-0123456789", actor), RK_ROLE_ADMIN);
    cr_assert_str_eq(actor, "admin");
    cr_assert_eq(resolve("bootstrap-token-012345678", actor), RK_ROLE_NONE);
    rk_tokens_set_bootstrap("");
    cr_assert_eq(resolve("", actor), RK_ROLE_NONE);
}

Test(tokens, revocation_by_another_connection_is_noticed) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1], actor[RK_TOKEN_NAME_MAX + 1];
    create("ci", RK_ROLE_EDITOR, 0, token, id);
    sqlite3 *other;
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM api_tokens WHERE id = '%s'", id);
    cr_assert_eq(sqlite3_exec(other, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    int64_t deadline = rk_mono_ms() + 1000;
    while (resolve(token, actor) != RK_ROLE_NONE && rk_mono_ms() < deadline)
        usleep(20 * 1000);
    cr_assert_eq(resolve(token, actor), RK_ROLE_NONE);
}

Test(tokens, secret_is_stored_only_as_a_salted_hash) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1];
    create("ci", RK_ROLE_ADMIN, 0, token, id);
    sqlite3 *conn;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(path, &conn), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(conn, "SELECT salt, hash FROM api_tokens", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    const char *secret = token + 4 + RK_TOKEN_ID_LEN;
    cr_assert_eq(strlen((const char *)sqlite3_column_text(st, 0)), 32);
    cr_assert_eq(strlen((const char *)sqlite3_column_text(st, 1)), 64);
    cr_assert_neq(strcmp((const char *)sqlite3_column_text(st, 1), secret), 0);
    sqlite3_finalize(st);
    sqlite3_close(conn);
}

Test(tokens, listing_never_holds_a_secret) {
    char token[RK_TOKEN_LEN + 1], id[RK_TOKEN_ID_LEN + 1];
    create("a", RK_ROLE_VIEWER, 0, token, id);
    cJSON *list = NULL;
    cr_assert_eq(rk_tokens_list(&list), RK_TOKENS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    char *text = cJSON_PrintUnformatted(list);
    cr_assert_null(strstr(text, token + 4 + RK_TOKEN_ID_LEN));
    cr_assert_not_null(strstr(text, id));
    cJSON_free(text);
    cJSON_Delete(list);
}

Test(tokens, role_names_round_trip) {
    cr_assert_eq(rk_role_parse("viewer"), RK_ROLE_VIEWER);
    cr_assert_eq(rk_role_parse("editor"), RK_ROLE_EDITOR);
    cr_assert_eq(rk_role_parse("admin"), RK_ROLE_ADMIN);
    cr_assert_eq(rk_role_parse("root"), RK_ROLE_NONE);
    cr_assert_str_eq(rk_role_name(RK_ROLE_EDITOR), "editor");
}

Test(token_names, the_actors_ratekit_names_itself_are_reserved) {
    static const char *const reserved[] = {"admin", "Admin", " ADMIN ", "sync", "Sync "};
    static const char *const allowed[] = {"admins", "admin-bot", "my admin", "syncer", "a", ""};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        cr_expect(rk_token_name_reserved(reserved[i]), "\"%s\" is reserved", reserved[i]);
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        cr_expect_not(rk_token_name_reserved(allowed[i]), "\"%s\" is not", allowed[i]);
    cr_expect_str_eq(RK_ACTOR_BOOTSTRAP, "admin");
}
