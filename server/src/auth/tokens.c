/*
 * tokens.c — see tokens.h.
 *
 * The snapshot is an array sorted by id (binary search), swapped atomically
 * and freed a grace period after it is replaced, as the rules and lists
 * snapshots are. Each entry counts when its token was last used in memory
 * (an atomic store, at most once a second per token); the poll thread writes
 * those times to SQLite every few seconds, so a busy admin plane costs no
 * write per request.
 */
#include "tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../log.h"

#define SALT_BYTES 16
#define GRACE_MS 10000
#define FLUSH_EVERY_MS 5000
#define BOOTSTRAP_MAX 256

typedef struct {
    char id[RK_TOKEN_ID_LEN + 1];
    char name[RK_TOKEN_NAME_MAX + 1];
    rk_role_t role;
    unsigned char salt[SALT_BYTES];
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int64_t expires_ms;           /* 0: never */
    _Atomic int64_t last_used_ms; /* 0: never; written by resolvers */
    int64_t flushed_ms;           /* last_used_ms as stored (guarded by g.lock) */
} entry_t;

typedef struct snapshot {
    entry_t *entries; /* sorted by id */
    size_t n;
    struct snapshot *next_retired;
    int64_t retired_at;
} snapshot_t;

static struct {
    sqlite3 *db; /* guarded by lock */
    pthread_mutex_t lock;
    _Atomic(snapshot_t *) current;
    snapshot_t *retired;  /* guarded by lock */
    int64_t data_version; /* INT64_MIN: reload on the next poll */
    pthread_t thread;
    bool thread_running;
    atomic_bool stopping;
    char bootstrap[BOOTSTRAP_MAX + 1];
    size_t bootstrap_len;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef void (*change_hook_t)(void);
static _Atomic(change_hook_t) change_hook;

void rk_tokens_set_change_hook(void (*fn)(void)) {
    atomic_store(&change_hook, fn);
}

/* Tells the hook (the Redis sync) that this process changed the tokens. */
static void changed(void) {
    change_hook_t fn = atomic_load(&change_hook);
    if (fn)
        fn();
}

static const char *const role_names[] = {"none", "viewer", "editor", "admin"};

const char *rk_role_name(rk_role_t role) {
    return role >= RK_ROLE_NONE && role <= RK_ROLE_ADMIN ? role_names[role] : "none";
}

rk_role_t rk_role_parse(const char *name) {
    for (int r = RK_ROLE_VIEWER; r <= RK_ROLE_ADMIN; r++)
        if (name && !strcmp(name, role_names[r]))
            return (rk_role_t)r;
    return RK_ROLE_NONE;
}

bool rk_token_name_reserved(const char *name) {
    static const char *const reserved[] = {RK_ACTOR_BOOTSTRAP, RK_ACTOR_SYNC};
    size_t start = strspn(name, " ");
    size_t len = strlen(name + start);
    while (len && name[start + len - 1] == ' ')
        len--;
    for (size_t i = 0; i < RK_ARRAY_LEN(reserved); i++)
        if (len == strlen(reserved[i]) && !strncasecmp(name + start, reserved[i], len))
            return true;
    return false;
}

void rk_tokens_set_bootstrap(const char *token) {
    snprintf(g.bootstrap, sizeof g.bootstrap, "%s", token ? token : "");
    g.bootstrap_len = strlen(g.bootstrap);
}

/* ---- lookups (admin requests) ---------------------------------------------- */

/* hash = SHA-256(salt || secret), the secret being RK_TOKEN_SECRET_LEN characters. */
static void token_hash(const unsigned char salt[SALT_BYTES], const char *secret,
                       unsigned char hash[SHA256_DIGEST_LENGTH]) {
    unsigned char buf[SALT_BYTES + RK_TOKEN_SECRET_LEN];
    memcpy(buf, salt, SALT_BYTES);
    memcpy(buf + SALT_BYTES, secret, RK_TOKEN_SECRET_LEN);
    SHA256(buf, sizeof buf, hash);
    OPENSSL_cleanse(buf, sizeof buf);
}

static entry_t *snapshot_find(const snapshot_t *s, const char *id) {
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, s->entries[mid].id);
        if (c == 0)
            return &s->entries[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

rk_role_t rk_tokens_resolve(const char *token, size_t len, char *actor, size_t actorlen) {
    if (g.bootstrap_len && rk_const_time_eq(token, len, g.bootstrap, g.bootstrap_len)) {
        snprintf(actor, actorlen, "%s", RK_ACTOR_BOOTSTRAP);
        return RK_ROLE_ADMIN;
    }
    if (len != RK_TOKEN_LEN || memcmp(token, "rk_", 3) != 0 || token[3 + RK_TOKEN_ID_LEN] != '_')
        return RK_ROLE_NONE;
    char id[RK_TOKEN_ID_LEN + 1];
    memcpy(id, token + 3, RK_TOKEN_ID_LEN);
    id[RK_TOKEN_ID_LEN] = '\0';
    snapshot_t *s = atomic_load_explicit(&g.current, memory_order_acquire);
    entry_t *e = snapshot_find(s, id);
    if (!e)
        return RK_ROLE_NONE;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    token_hash(e->salt, token + 4 + RK_TOKEN_ID_LEN, hash);
    if (CRYPTO_memcmp(hash, e->hash, sizeof hash) != 0)
        return RK_ROLE_NONE;
    int64_t now = rk_now_ms();
    if (e->expires_ms && e->expires_ms <= now)
        return RK_ROLE_NONE;
    if (now - atomic_load_explicit(&e->last_used_ms, memory_order_relaxed) >= 1000)
        atomic_store_explicit(&e->last_used_ms, now, memory_order_relaxed);
    snprintf(actor, actorlen, "%s", e->name);
    return e->role;
}

/* ---- snapshots --------------------------------------------------------------- */

static void snapshot_free(snapshot_t *s) {
    if (s) {
        free(s->entries);
        free(s);
    }
}

/*
 * Reads every token into a new snapshot (sorted by id), carrying over the
 * in-memory last-used times of prev. NULL on error. Call with lock held.
 */
static snapshot_t *snapshot_load(const snapshot_t *prev) {
    sqlite3_stmt *st = NULL;
    snapshot_t *s = calloc(1, sizeof *s);
    size_t cap = 16;
    if (!s || !(s->entries = calloc(cap, sizeof *s->entries)) ||
        sqlite3_prepare_v2(g.db,
                           "SELECT id, name, role, salt, hash, coalesce(expires_at, 0), "
                           "coalesce(last_used_at, 0) FROM api_tokens ORDER BY id LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int(st, 1, RK_TOKENS_MAX);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->n == cap) {
            entry_t *more = realloc(s->entries, 2 * cap * sizeof *more);
            if (!more)
                goto fail;
            s->entries = more;
            cap *= 2;
        }
        entry_t *e = &s->entries[s->n];
        memset(e, 0, sizeof *e);
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!id || strlen(id) != RK_TOKEN_ID_LEN ||
            rk_unhex((const char *)sqlite3_column_text(st, 3), e->salt, SALT_BYTES) != RK_OK ||
            rk_unhex((const char *)sqlite3_column_text(st, 4), e->hash, sizeof e->hash) != RK_OK) {
            rk_warn("tokens: a stored token is malformed, skipped");
            continue;
        }
        memcpy(e->id, id, RK_TOKEN_ID_LEN + 1);
        snprintf(e->name, sizeof e->name, "%s", (const char *)sqlite3_column_text(st, 1));
        e->role = rk_role_parse((const char *)sqlite3_column_text(st, 2));
        e->expires_ms = sqlite3_column_int64(st, 5);
        e->flushed_ms = sqlite3_column_int64(st, 6);
        int64_t used = e->flushed_ms;
        const entry_t *old = snapshot_find(prev, e->id);
        if (old && atomic_load(&old->last_used_ms) > used)
            used = atomic_load(&old->last_used_ms);
        atomic_init(&e->last_used_ms, used);
        s->n++;
    }
    if (step != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return s;
fail:
    sqlite3_finalize(st);
    snapshot_free(s);
    return NULL;
}

static void free_retired(bool all) {
    snapshot_t **p = &g.retired;
    int64_t now = rk_mono_ms();
    while (*p) {
        if (all || now - (*p)->retired_at >= GRACE_MS) {
            snapshot_t *dead = *p;
            *p = dead->next_retired;
            snapshot_free(dead);
        } else {
            p = &(*p)->next_retired;
        }
    }
}

/* Loads and swaps in a new snapshot; RK_ERR (the old one stays) on failure. Lock held. */
static rk_status_t reload_locked(void) {
    snapshot_t *old = atomic_load_explicit(&g.current, memory_order_relaxed);
    snapshot_t *s = snapshot_load(old);
    if (!s) {
        rk_warn("tokens: cannot load the tokens: %s", sqlite3_errmsg(g.db));
        g.data_version = INT64_MIN; /* the poll thread tries again */
        return RK_ERR;
    }
    atomic_store_explicit(&g.current, s, memory_order_release);
    if (old) {
        old->retired_at = rk_mono_ms();
        old->next_retired = g.retired;
        g.retired = old;
    }
    return RK_OK;
}

static int64_t data_version_locked(void) {
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(g.db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Writes the last-used times that moved since they were stored. Lock held. */
static void flush_last_used_locked(void) {
    snapshot_t *s = atomic_load_explicit(&g.current, memory_order_relaxed);
    sqlite3_stmt *st = NULL;
    for (size_t i = 0; s && i < s->n; i++) {
        entry_t *e = &s->entries[i];
        int64_t used = atomic_load_explicit(&e->last_used_ms, memory_order_relaxed);
        if (used <= e->flushed_ms)
            continue;
        if (!st && sqlite3_prepare_v2(g.db,
                                      "UPDATE api_tokens SET last_used_at = "
                                      "max(coalesce(last_used_at, 0), ?1) WHERE id = ?2",
                                      -1, &st, NULL) != SQLITE_OK)
            return;
        sqlite3_bind_int64(st, 1, used);
        sqlite3_bind_text(st, 2, e->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            e->flushed_ms = used;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

/* Notices other processes' changes; stores last-used times every few seconds. */
static void *poll_main(void *arg) {
    (void)arg;
    int64_t last_flush = rk_mono_ms();
    while (!atomic_load(&g.stopping)) {
        usleep(RK_TOKENS_POLL_MS * 1000);
        pthread_mutex_lock(&g.lock);
        int64_t v = data_version_locked();
        if (v >= 0 && v != g.data_version && reload_locked() == RK_OK)
            g.data_version = v;
        if (rk_mono_ms() - last_flush >= FLUSH_EVERY_MS) {
            flush_last_used_locked();
            last_flush = rk_mono_ms();
        }
        free_retired(false);
        pthread_mutex_unlock(&g.lock);
    }
    return NULL;
}

rk_status_t rk_tokens_open(const char *db_path, char *err, size_t errlen) {
    if (sqlite3_open_v2(db_path, &g.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", db_path, sqlite3_errmsg(g.db));
        sqlite3_close(g.db);
        g.db = NULL;
        return RK_ERR;
    }
    sqlite3_busy_timeout(g.db, 5000);
    sqlite3_exec(g.db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    pthread_mutex_lock(&g.lock);
    g.data_version = data_version_locked();
    rk_status_t rc = reload_locked();
    pthread_mutex_unlock(&g.lock);
    if (rc != RK_OK) {
        snprintf(err, errlen, "cannot read the API tokens: %s", sqlite3_errmsg(g.db));
        rk_tokens_close();
        return RK_ERR;
    }
    atomic_store(&g.stopping, false);
    g.thread_running = pthread_create(&g.thread, NULL, poll_main, NULL) == 0;
    if (!g.thread_running) {
        snprintf(err, errlen, "cannot start the tokens thread");
        rk_tokens_close();
        return RK_ERR;
    }
    return RK_OK;
}

void rk_tokens_close(void) {
    if (g.thread_running) {
        atomic_store(&g.stopping, true);
        pthread_join(g.thread, NULL);
        g.thread_running = false;
    }
    pthread_mutex_lock(&g.lock);
    if (g.db)
        flush_last_used_locked();
    snapshot_free(atomic_exchange(&g.current, NULL));
    free_retired(true);
    sqlite3_close(g.db);
    g.db = NULL;
    pthread_mutex_unlock(&g.lock);
}

/* ---- changes (the admin API) -------------------------------------------------- */

static void add_time_or_null(cJSON *o, const char *name, int64_t ms) {
    if (ms > 0) {
        char at[32];
        rk_format_time(ms, at);
        cJSON_AddStringToObject(o, name, at);
    } else {
        cJSON_AddNullToObject(o, name);
    }
}

rk_tokens_status_t rk_tokens_create(const char *name, rk_role_t role, int64_t expires_ms,
                                    const char *created_by, cJSON **out) {
    unsigned char raw_id[RK_TOKEN_ID_LEN / 2], raw_secret[RK_TOKEN_SECRET_LEN / 2];
    unsigned char salt[SALT_BYTES], hash[SHA256_DIGEST_LENGTH];
    char id[RK_TOKEN_ID_LEN + 1], secret[RK_TOKEN_SECRET_LEN + 1];
    char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * SHA256_DIGEST_LENGTH + 1];
    if (rk_random_bytes(raw_id, sizeof raw_id) != RK_OK ||
        rk_random_bytes(raw_secret, sizeof raw_secret) != RK_OK ||
        rk_random_bytes(salt, sizeof salt) != RK_OK)
        return RK_TOKENS_ERROR;
    rk_hex(raw_id, sizeof raw_id, id);
    rk_hex(raw_secret, sizeof raw_secret, secret);
    rk_hex(salt, sizeof salt, salt_hex);
    token_hash(salt, secret, hash);
    rk_hex(hash, sizeof hash, hash_hex);
    int64_t now = rk_now_ms();

    rk_tokens_status_t rc = RK_TOKENS_ERROR;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&g.lock);
    if (sqlite3_prepare_v2(g.db, "SELECT count(*) FROM api_tokens", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto done;
    if (sqlite3_column_int64(st, 0) >= RK_TOKENS_MAX) {
        rc = RK_TOKENS_FULL;
        goto done;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(g.db,
                           "INSERT INTO api_tokens (id, name, role, salt, hash, created_at, "
                           "created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rk_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, salt_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, hash_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_text(st, 7, created_by ? created_by : "", -1, SQLITE_STATIC);
    if (expires_ms > 0)
        sqlite3_bind_int64(st, 8, expires_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto done;
    reload_locked(); /* on failure, the poll thread loads it within RK_TOKENS_POLL_MS */
    rc = RK_TOKENS_OK;
done:
    if (rc == RK_TOKENS_ERROR)
        rk_error("tokens: cannot create a token: %s", sqlite3_errmsg(g.db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&g.lock);
    if (rc != RK_TOKENS_OK)
        return rc;
    changed();
    char token[RK_TOKEN_LEN + 1];
    snprintf(token, sizeof token, "rk_%s_%s", id, secret);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "role", rk_role_name(role));
    cJSON_AddStringToObject(o, "token", token);
    add_time_or_null(o, "created_at", now);
    add_time_or_null(o, "expires_at", expires_ms);
    *out = o;
    return RK_TOKENS_OK;
}

rk_tokens_status_t rk_tokens_list(cJSON **out) {
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *st = NULL;
    int64_t now = rk_now_ms();
    pthread_mutex_lock(&g.lock);
    const snapshot_t *s = atomic_load_explicit(&g.current, memory_order_relaxed);
    int step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(
            g.db,
            "SELECT id, name, role, created_at, created_by, coalesce(expires_at, 0), "
            "coalesce(last_used_at, 0) FROM api_tokens "
            "ORDER BY created_at DESC, id",
            -1, &st, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            int64_t expires = sqlite3_column_int64(st, 5);
            int64_t used = sqlite3_column_int64(st, 6);
            const entry_t *e = snapshot_find(s, id);
            if (e && atomic_load(&e->last_used_ms) > used)
                used = atomic_load(&e->last_used_ms);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "name", (const char *)sqlite3_column_text(st, 1));
            cJSON_AddStringToObject(o, "role", (const char *)sqlite3_column_text(st, 2));
            add_time_or_null(o, "created_at", sqlite3_column_int64(st, 3));
            cJSON_AddStringToObject(o, "created_by", (const char *)sqlite3_column_text(st, 4));
            add_time_or_null(o, "expires_at", expires);
            add_time_or_null(o, "last_used_at", used);
            cJSON_AddBoolToObject(o, "expired", expires > 0 && expires <= now);
            cJSON_AddItemToArray(arr, o);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&g.lock);
    if (step != SQLITE_DONE) {
        cJSON_Delete(arr);
        return RK_TOKENS_ERROR;
    }
    *out = arr;
    return RK_TOKENS_OK;
}

rk_tokens_status_t rk_tokens_delete(const char *id) {
    sqlite3_stmt *st = NULL;
    rk_tokens_status_t rc = RK_TOKENS_ERROR;
    pthread_mutex_lock(&g.lock);
    if (sqlite3_prepare_v2(g.db, "DELETE FROM api_tokens WHERE id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            rc = sqlite3_changes(g.db) > 0 ? RK_TOKENS_OK : RK_TOKENS_NOT_FOUND;
    }
    sqlite3_finalize(st);
    /* Revocation is in force here before the answer; a failed rebuild is an error
     * (and the poll thread tries again). */
    bool deleted = rc == RK_TOKENS_OK;
    if (rc == RK_TOKENS_OK && reload_locked() != RK_OK)
        rc = RK_TOKENS_ERROR;
    pthread_mutex_unlock(&g.lock);
    if (deleted)
        changed();
    return rc;
}

/* ---- sharing through Redis (rules/sync.c) ----------------------------------------- */

cJSON *rk_tokens_export(void) {
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *st = NULL;
    int step = SQLITE_ERROR;
    pthread_mutex_lock(&g.lock);
    if (g.db && sqlite3_prepare_v2(g.db,
                                   "SELECT id, name, role, salt, hash, created_at, created_by, "
                                   "coalesce(expires_at, 0) FROM api_tokens ORDER BY id",
                                   -1, &st, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            cJSON *o = cJSON_CreateObject();
            static const char *const text_cols[] = {"id", "name", "role", "salt", "hash"};
            for (int i = 0; i < 5; i++)
                cJSON_AddStringToObject(o, text_cols[i], (const char *)sqlite3_column_text(st, i));
            cJSON_AddNumberToObject(o, "created_at_ms", (double)sqlite3_column_int64(st, 5));
            cJSON_AddStringToObject(o, "created_by", (const char *)sqlite3_column_text(st, 6));
            cJSON_AddNumberToObject(o, "expires_at_ms", (double)sqlite3_column_int64(st, 7));
            cJSON_AddItemToArray(arr, o);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&g.lock);
    if (step != SQLITE_DONE) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

static const char *str_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t ms_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return rk_json_whole(v, 1) ? (int64_t)v->valuedouble : 0;
}

/* Whether an exported token is well formed (ids, role, salt and hash). */
static bool exported_token_valid(const cJSON *t) {
    unsigned char salt[SALT_BYTES], hash[SHA256_DIGEST_LENGTH];
    const char *id = str_of(t, "id"), *name = str_of(t, "name");
    return id && strlen(id) == RK_TOKEN_ID_LEN && strspn(id, "0123456789abcdef") == strlen(id) &&
           name && strlen(name) <= RK_TOKEN_NAME_MAX &&
           rk_role_parse(str_of(t, "role")) != RK_ROLE_NONE &&
           rk_unhex(str_of(t, "salt"), salt, SALT_BYTES) == RK_OK &&
           rk_unhex(str_of(t, "hash"), hash, sizeof hash) == RK_OK;
}

/* Whether tokens (an exported array) holds id. */
static bool holds_id(const cJSON *tokens, const char *id) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tokens) {
        const char *other = str_of(t, "id");
        if (other && !strcmp(other, id))
            return true;
    }
    return false;
}

rk_tokens_status_t rk_tokens_replace(const cJSON *tokens) {
    rk_tokens_status_t rc = RK_TOKENS_ERROR;
    sqlite3_stmt *ids = NULL, *del = NULL, *put = NULL;
    pthread_mutex_lock(&g.lock);
    if (!g.db || sqlite3_exec(g.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(g.db, "SELECT id FROM api_tokens", -1, &ids, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g.db, "DELETE FROM api_tokens WHERE id = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(g.db,
                           "INSERT INTO api_tokens (id, name, role, salt, hash, created_at, "
                           "created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                           "ON CONFLICT (id) DO UPDATE SET name = ?2, role = ?3, salt = ?4, "
                           "hash = ?5, created_at = ?6, created_by = ?7, expires_at = ?8",
                           -1, &put, NULL) != SQLITE_OK)
        goto abort;
    while (sqlite3_step(ids) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(ids, 0);
        if (holds_id(tokens, id))
            continue;
        sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(del) != SQLITE_DONE)
            goto abort;
        sqlite3_reset(del);
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, tokens) {
        if (!exported_token_valid(t)) {
            rk_warn("tokens: a shared token is malformed, skipped");
            continue;
        }
        static const char *const text_cols[] = {"id", "name", "role", "salt", "hash"};
        for (int i = 0; i < 5; i++)
            sqlite3_bind_text(put, i + 1, str_of(t, text_cols[i]), -1, SQLITE_STATIC);
        sqlite3_bind_int64(put, 6, ms_of(t, "created_at_ms"));
        const char *by = str_of(t, "created_by");
        sqlite3_bind_text(put, 7, by ? by : "", -1, SQLITE_STATIC);
        if (ms_of(t, "expires_at_ms"))
            sqlite3_bind_int64(put, 8, ms_of(t, "expires_at_ms"));
        else
            sqlite3_bind_null(put, 8);
        if (sqlite3_step(put) != SQLITE_DONE)
            goto abort;
        sqlite3_reset(put);
    }
    if (sqlite3_exec(g.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto abort;
    rc = reload_locked() == RK_OK ? RK_TOKENS_OK : RK_TOKENS_ERROR;
    goto out;
abort:
    rk_warn("tokens: cannot store the shared tokens: %s", sqlite3_errmsg(g.db));
    sqlite3_exec(g.db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(ids);
    sqlite3_finalize(del);
    sqlite3_finalize(put);
    pthread_mutex_unlock(&g.lock);
    return rc;
}
