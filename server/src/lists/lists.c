/*
 * lists.c — see lists.h.
 *
 * The snapshot keeps keys in one sorted array (binary search) and CIDRs
 * grouped by prefix length, each group sorted by masked address: a lookup
 * costs one binary search per distinct prefix length in use (at most 129),
 * never a scan of the entries. A replaced snapshot is freed after a grace
 * period no check can outlive, by the poll thread.
 */
#include "lists.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../log.h"

typedef void (*change_hook_t)(void);
static _Atomic(change_hook_t) change_hook;

#define GRACE_MS 10000
#define POLL_MS 250

typedef struct {
    const char *value;  /* into the snapshot's strings */
    int64_t expires_ms; /* 0: never */
    uint8_t list;       /* RK_LIST_SAFE or RK_LIST_DENY */
} key_entry_t;

typedef struct {
    rk_cidr_t cidr; /* address masked to its prefix */
    int64_t expires_ms;
    uint8_t list;
} cidr_entry_t;

typedef struct snapshot {
    key_entry_t *keys;
    size_t nkeys;
    cidr_entry_t *cidrs; /* sorted by (bits, address) */
    size_t ncidrs;
    unsigned lens[130]; /* distinct prefix lengths in use */
    size_t len_start[130], len_count[130], nlens;
    char *strings;
    struct snapshot *next_retired;
    int64_t retired_at;
} snapshot_t;

static struct {
    sqlite3 *db; /* guarded by lock */
    pthread_mutex_t lock;
    _Atomic(snapshot_t *) current;
    snapshot_t *retired;
    int64_t data_version;
    pthread_t thread;
    bool thread_running;
    atomic_bool stopping;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- lookups (the check path) --------------------------------------------- */

static int cmp_ip(const rk_ip_t *a, const rk_ip_t *b) {
    return memcmp(a->b, b->b, 16);
}

static void mask_ip(rk_ip_t *ip, unsigned bits) {
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
        ip->b[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

/* Combines the verdicts of live entries: a denial wins. */
static rk_list_verdict_t combine(rk_list_verdict_t v, uint8_t list, int64_t expires, int64_t now) {
    if (expires && expires <= now)
        return v;
    return list == RK_LIST_DENY || v == RK_LIST_DENY ? RK_LIST_DENY : RK_LIST_SAFE;
}

rk_list_verdict_t rk_lists_check_ip(const rk_ip_t *ip, int64_t now_ms) {
    const snapshot_t *s = atomic_load_explicit(&g.current, memory_order_acquire);
    rk_list_verdict_t v = RK_LIST_NONE;
    if (!s)
        return v;
    for (size_t l = 0; l < s->nlens; l++) {
        rk_ip_t masked = *ip;
        mask_ip(&masked, s->lens[l]);
        const cidr_entry_t *base = s->cidrs + s->len_start[l];
        size_t lo = 0, hi = s->len_count[l];
        while (lo < hi) { /* first entry >= masked */
            size_t mid = (lo + hi) / 2;
            if (cmp_ip(&base[mid].cidr.ip, &masked) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < s->len_count[l] && !cmp_ip(&base[lo].cidr.ip, &masked); lo++)
            if (base[lo].cidr.ip.v4 == ip->v4)
                v = combine(v, base[lo].list, base[lo].expires_ms, now_ms);
    }
    return v;
}

rk_list_verdict_t rk_lists_check_key(const char *key, int64_t now_ms) {
    const snapshot_t *s = atomic_load_explicit(&g.current, memory_order_acquire);
    rk_list_verdict_t v = RK_LIST_NONE;
    if (!s || s->nkeys == 0)
        return v;
    size_t lo = 0, hi = s->nkeys;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(s->keys[mid].value, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < s->nkeys && !strcmp(s->keys[lo].value, key); lo++)
        v = combine(v, s->keys[lo].list, s->keys[lo].expires_ms, now_ms);
    return v;
}

/* ---- building snapshots ---------------------------------------------------- */

static void snapshot_free(snapshot_t *s) {
    if (!s)
        return;
    free(s->keys);
    free(s->cidrs);
    free(s->strings);
    free(s);
}

static int cmp_key_entry(const void *a, const void *b) {
    return strcmp(((const key_entry_t *)a)->value, ((const key_entry_t *)b)->value);
}

static int cmp_cidr_entry(const void *a, const void *b) {
    const cidr_entry_t *x = a, *y = b;
    if (x->cidr.bits != y->cidr.bits)
        return x->cidr.bits < y->cidr.bits ? -1 : 1;
    return cmp_ip(&x->cidr.ip, &y->cidr.ip);
}

/* Reads every live entry into a new snapshot; NULL on error. Call with lock held. */
static snapshot_t *snapshot_load(sqlite3 *db, int64_t now_ms) {
    sqlite3_stmt *st = NULL;
    snapshot_t *s = calloc(1, sizeof *s);
    size_t n = 0, bytes = 0;
    if (!s || sqlite3_prepare_v2(db,
                                 "SELECT list, value, kind, COALESCE(expires_at, 0) FROM lists "
                                 "WHERE expires_at IS NULL OR expires_at > ?1 LIMIT ?2",
                                 -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, RK_LISTS_MAX_ENTRIES);
    s->keys = calloc(RK_LISTS_MAX_ENTRIES, sizeof *s->keys);
    s->cidrs = calloc(RK_LISTS_MAX_ENTRIES, sizeof *s->cidrs);
    s->strings = malloc(RK_LISTS_MAX_ENTRIES * 8 + 4096);
    size_t strings_cap = RK_LISTS_MAX_ENTRIES * 8 + 4096;
    if (!s->keys || !s->cidrs || !s->strings)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW && n < RK_LISTS_MAX_ENTRIES) {
        uint8_t list = !strcmp((const char *)sqlite3_column_text(st, 0), "denylist") ? RK_LIST_DENY
                                                                                     : RK_LIST_SAFE;
        const char *value = (const char *)sqlite3_column_text(st, 1);
        bool is_cidr = !strcmp((const char *)sqlite3_column_text(st, 2), "cidr");
        int64_t expires = sqlite3_column_int64(st, 3);
        if (is_cidr) {
            cidr_entry_t *c = &s->cidrs[s->ncidrs];
            if (rk_cidr_parse(value, &c->cidr) != RK_OK)
                continue;
            mask_ip(&c->cidr.ip, c->cidr.bits);
            c->expires_ms = expires;
            c->list = list;
            s->ncidrs++;
        } else {
            size_t len = strlen(value) + 1;
            if (bytes + len > strings_cap)
                continue;
            memcpy(s->strings + bytes, value, len);
            s->keys[s->nkeys++] = (key_entry_t){(const char *)(uintptr_t)bytes, expires, list};
            bytes += len;
        }
        n++;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < s->nkeys; i++) /* offsets become pointers now that strings is final */
        s->keys[i].value = s->strings + (uintptr_t)s->keys[i].value;
    qsort(s->keys, s->nkeys, sizeof *s->keys, cmp_key_entry);
    qsort(s->cidrs, s->ncidrs, sizeof *s->cidrs, cmp_cidr_entry);
    for (size_t i = 0; i < s->ncidrs; i++) {
        if (s->nlens == 0 || s->lens[s->nlens - 1] != s->cidrs[i].cidr.bits) {
            s->lens[s->nlens] = s->cidrs[i].cidr.bits;
            s->len_start[s->nlens++] = i;
        }
        s->len_count[s->nlens - 1]++;
    }
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

/* Loads and swaps in a new snapshot. Call with lock held. */
static void reload_locked(void) {
    snapshot_t *s = snapshot_load(g.db, rk_now_ms());
    if (!s) {
        rk_warn("lists: cannot load the lists: %s", sqlite3_errmsg(g.db));
        return;
    }
    snapshot_t *old = atomic_exchange_explicit(&g.current, s, memory_order_acq_rel);
    if (old) {
        old->retired_at = rk_mono_ms();
        old->next_retired = g.retired;
        g.retired = old;
    }
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

void rk_lists_poll(void) {
    pthread_mutex_lock(&g.lock);
    int64_t v = data_version_locked();
    if (v != g.data_version) {
        g.data_version = v;
        reload_locked();
    }
    free_retired(false);
    pthread_mutex_unlock(&g.lock);
}

/* Also reloads every few seconds, so that entries expire from the snapshot. */
static void *poll_main(void *arg) {
    (void)arg;
    int ticks = 0;
    while (!atomic_load(&g.stopping)) {
        usleep(POLL_MS * 1000);
        if (++ticks % 20 == 0) {
            pthread_mutex_lock(&g.lock);
            reload_locked();
            pthread_mutex_unlock(&g.lock);
        }
        rk_lists_poll();
    }
    return NULL;
}

rk_status_t rk_lists_open(const char *db_path, char *err, size_t errlen) {
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
    reload_locked();
    pthread_mutex_unlock(&g.lock);
    if (!atomic_load(&g.current)) {
        snprintf(err, errlen, "cannot read the lists: %s", sqlite3_errmsg(g.db));
        return RK_ERR;
    }
    atomic_store(&g.stopping, false);
    g.thread_running = pthread_create(&g.thread, NULL, poll_main, NULL) == 0;
    return g.thread_running ? RK_OK : RK_ERR;
}

void rk_lists_close(void) {
    if (g.thread_running) {
        atomic_store(&g.stopping, true);
        pthread_join(g.thread, NULL);
        g.thread_running = false;
    }
    snapshot_free(atomic_exchange(&g.current, NULL));
    free_retired(true);
    sqlite3_close(g.db);
    g.db = NULL;
}

/* ---- writes (the admin API, lists_api.c) ----------------------------------- */

/* The connection for a write, under the lock; rk_lists_db_unlock releases it. */
sqlite3 *rk_lists_db_lock(void) {
    pthread_mutex_lock(&g.lock);
    return g.db;
}

/* After a write of this process (lock held): the snapshot, and the file's version seen. */
static void reload_after_write_locked(void) {
    reload_locked();
    g.data_version = data_version_locked();
}

/* Releases the write lock; after a change, the snapshot is rebuilt first, then the hook told. */
void rk_lists_db_unlock(bool changed) {
    if (changed)
        reload_after_write_locked();
    pthread_mutex_unlock(&g.lock);
    change_hook_t fn = atomic_load(&change_hook);
    if (changed && fn)
        fn();
}

/* ---- instances sharing only Redis (rules/sync.c) ---------------------------- */

#define ROW_COLUMNS "id, list, value, kind, source, expires_at, note, created_at, created_by"
#define TEXT_MAX 1024

void rk_lists_set_change_hook(void (*fn)(void)) {
    atomic_store(&change_hook, fn);
}

/* Every entry as stored, by id (lock held); NULL when SQLite fails. */
static cJSON *export_locked(void) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(g.db, "SELECT " ROW_COLUMNS " FROM lists ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    cJSON *rows = cJSON_CreateArray();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        for (int col = 1; col <= 4; col++)
            cJSON_AddStringToObject(o, sqlite3_column_name(st, col),
                                    (const char *)sqlite3_column_text(st, col));
        if (sqlite3_column_type(st, 5) == SQLITE_NULL)
            cJSON_AddNullToObject(o, "expires_at");
        else
            cJSON_AddNumberToObject(o, "expires_at", (double)sqlite3_column_int64(st, 5));
        cJSON_AddStringToObject(o, "note", (const char *)sqlite3_column_text(st, 6));
        cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(st, 7));
        cJSON_AddStringToObject(o, "created_by", (const char *)sqlite3_column_text(st, 8));
        cJSON_AddItemToArray(rows, o);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        cJSON_Delete(rows);
        return NULL;
    }
    return rows;
}

cJSON *rk_lists_export(void) {
    pthread_mutex_lock(&g.lock);
    cJSON *rows = g.db ? export_locked() : NULL;
    pthread_mutex_unlock(&g.lock);
    return rows;
}

static const char *text_of(const cJSON *row, const char *name) {
    return rk_json_text(cJSON_GetObjectItemCaseSensitive(row, name), TEXT_MAX);
}

/* Whether the text field name of row is a or b. */
static bool one_of(const cJSON *row, const char *name, const char *a, const char *b) {
    const char *t = text_of(row, name);
    return t && (!strcmp(t, a) || !strcmp(t, b));
}

bool rk_lists_row_valid(const cJSON *row) {
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(row, "expires_at");
    return cJSON_IsObject(row) && rk_json_whole(cJSON_GetObjectItemCaseSensitive(row, "id"), 1) &&
           one_of(row, "list", "safelist", "denylist") && one_of(row, "kind", "cidr", "key") &&
           one_of(row, "source", "list", "ban") && text_of(row, "value") && text_of(row, "note") &&
           text_of(row, "created_by") &&
           rk_json_whole(cJSON_GetObjectItemCaseSensitive(row, "created_at"), 0) &&
           (cJSON_IsNull(expires) || rk_json_whole(expires, 0));
}

bool rk_lists_empty(void) {
    const snapshot_t *s = atomic_load_explicit(&g.current, memory_order_acquire);
    return !s || s->nkeys + s->ncidrs == 0;
}

/* Deletes every entry and inserts rows (lock held, inside a transaction). */
static bool replace_locked(const cJSON *rows) {
    sqlite3_stmt *st;
    if (sqlite3_exec(g.db, "DELETE FROM lists", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g.db,
                           "INSERT OR REPLACE INTO lists (" ROW_COLUMNS
                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    static const char *const texts[] = {NULL, "list", "value", "kind",      "source",
                                        NULL, "note", NULL,    "created_by"};
    const cJSON *row;
    bool ok = true;
    cJSON_ArrayForEach(row, rows) {
        sqlite3_bind_int64(st, 1,
                           (int64_t)cJSON_GetObjectItemCaseSensitive(row, "id")->valuedouble);
        for (int col = 1; col <= 8; col++)
            if (texts[col])
                sqlite3_bind_text(st, col + 1,
                                  cJSON_GetObjectItemCaseSensitive(row, texts[col])->valuestring,
                                  -1, SQLITE_STATIC);
        const cJSON *expires = cJSON_GetObjectItemCaseSensitive(row, "expires_at");
        if (cJSON_IsNumber(expires))
            sqlite3_bind_int64(st, 6, (int64_t)expires->valuedouble);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(
            st, 8, (int64_t)cJSON_GetObjectItemCaseSensitive(row, "created_at")->valuedouble);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
        if (!ok)
            break;
    }
    sqlite3_finalize(st);
    return ok;
}

rk_status_t rk_lists_replace(const cJSON *valid) {
    pthread_mutex_lock(&g.lock);
    cJSON *current = g.db ? export_locked() : NULL;
    bool ok = current != NULL;
    if (ok && !cJSON_Compare(current, valid, true)) {
        ok = sqlite3_exec(g.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        if (ok && !(ok = replace_locked(valid)))
            sqlite3_exec(g.db, "ROLLBACK", NULL, NULL, NULL);
        if (ok && !(ok = sqlite3_exec(g.db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK))
            sqlite3_exec(g.db, "ROLLBACK", NULL, NULL, NULL);
        if (ok)
            reload_after_write_locked();
        else
            rk_warn("lists: cannot apply the lists from Redis: %s", sqlite3_errmsg(g.db));
    }
    pthread_mutex_unlock(&g.lock);
    cJSON_Delete(current);
    return ok ? RK_OK : RK_ERR;
}
