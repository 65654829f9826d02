/*
 * audit.c — see audit.h.
 *
 * The check path counts a denial into its thread's pending row when the
 * denial belongs to the same group (rule, key, mode, limit, cost, second)
 * as the thread's last one, so that a key under attack costs a counter
 * increment per request, not a row through the queue. A denial of another
 * group pushes the pending row into a lock-free bounded queue, as do
 * access lines into theirs. One writer thread takes the pending rows
 * every TICK_MS and drains the queues: rows into SQLite in one
 * transaction per batch, access lines to the log. The API's reads use
 * their own connection behind a mutex; the admin plane reads, never the
 * check path.
 */
#include "audit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log.h"
#include "../rules/rules_db.h"
#include "queue.h"

#define ACCESS_QUEUE 16384
#define FLUSH_MS 500
#define TICK_MS 20
#define RETENTION_EVERY_MS 10000
#define RETENTION_BATCH 1000

typedef struct {
    char rule[RK_RULE_ID_MAX + 1];
    char key[RK_STORE_KEY_MAX + 1];
    char decision[16];
    int64_t cost, remaining, retry_after_ms;
} access_line_t;

static struct {
    rk_queue_t *rows;
    rk_queue_t *access;
    _Atomic uint64_t dropped;
    _Atomic uint64_t access_dropped;
    void (*observer)(const rk_violation_t *rows, size_t n);
    sqlite3 *writer;      /* the writer thread's */
    sqlite3_stmt *insert; /* on writer */
    sqlite3_stmt *purge;  /* on writer */
    sqlite3 *reader;      /* the API's, under read_lock */
    pthread_mutex_t read_lock;
    pthread_mutex_t lock; /* running, wake */
    pthread_cond_t wake;
    bool running;
    pthread_t thread;
    char instance[128];
    int64_t retention_ms;
    int64_t last_failure_log_ms;
} g = {.read_lock = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the check path ----------------------------------------------------------- */

/* Copies a NUL-terminated string of at most cap-1 bytes. */
static void copy_str(char *dst, const char *src, size_t cap) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Whether two rows count denials of one group (and may be one row). */
static bool same_group(const rk_violation_t *a, const rk_violation_t *b) {
    return a->at_ms / 1000 == b->at_ms / 1000 && a->mode == b->mode && a->limit == b->limit &&
           a->cost == b->cost && !strcmp(a->rule, b->rule) && !strcmp(a->key, b->key);
}

/* Queues a row; when the queue is full its denials are counted as dropped. */
static void queue_row(const rk_violation_t *v) {
    if (!rk_queue_push(g.rows, v))
        atomic_fetch_add_explicit(&g.dropped, (uint64_t)v->count, memory_order_relaxed);
}

/*
 * A thread's pending row, guarded by its own mutex: the thread takes it with
 * trylock (it never waits: when the writer holds it, the denial goes to the
 * queue), the writer when it takes the row. The list owns every thread's;
 * rk_audit_stop frees them and starts a new generation, so that a thread
 * still pointing at one of a stopped log makes itself another.
 */
typedef struct pending {
    pthread_mutex_t lock;
    rk_violation_t row; /* row.count == 0: none */
    struct pending *next;
} pending_t;

static struct {
    pthread_mutex_t lock; /* head */
    pending_t *head;
    _Atomic unsigned generation;
} pendings = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local pending_t *my_pending;
static _Thread_local unsigned my_generation;

/* This thread's pending row, made on its first denial; NULL when out of memory. */
static pending_t *this_thread_pending(void) {
    unsigned generation = atomic_load_explicit(&pendings.generation, memory_order_acquire);
    if (RK_LIKELY(my_pending != NULL && my_generation == generation))
        return my_pending;
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_lock(&pendings.lock);
    p->next = pendings.head;
    pendings.head = p;
    pthread_mutex_unlock(&pendings.lock);
    my_pending = p;
    my_generation = generation;
    return p;
}

/* Queues the threads' pending rows. */
static void take_pending(void) {
    pthread_mutex_lock(&pendings.lock);
    for (pending_t *p = pendings.head; p; p = p->next) {
        pthread_mutex_lock(&p->lock);
        if (p->row.count > 0) {
            queue_row(&p->row);
            p->row.count = 0;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&pendings.lock);
}

static void free_pending(void) {
    pthread_mutex_lock(&pendings.lock);
    while (pendings.head) {
        pending_t *next = pendings.head->next;
        pthread_mutex_destroy(&pendings.head->lock);
        free(pendings.head);
        pendings.head = next;
    }
    atomic_fetch_add_explicit(&pendings.generation, 1, memory_order_release);
    pthread_mutex_unlock(&pendings.lock);
}

void rk_audit_record(const rk_check_item_t *it, int64_t at_ms) {
    if (RK_UNLIKELY(!g.rows))
        return;
    rk_violation_t v;
    v.at_ms = at_ms;
    v.count = 1;
    v.limit = it->decision.limit;
    v.cost = it->cost;
    v.mode = it->rule->mode == RK_MODE_SHADOW ? RK_VIOLATION_SHADOW : RK_VIOLATION_ENFORCE;
    copy_str(v.rule, it->rule->id, sizeof v.rule);
    copy_str(v.key, it->key, sizeof v.key);
    pending_t *p = this_thread_pending();
    if (!p || pthread_mutex_trylock(&p->lock) != 0) {
        queue_row(&v);
        return;
    }
    if (p->row.count > 0 && same_group(&p->row, &v)) {
        p->row.count++;
    } else {
        if (p->row.count > 0)
            queue_row(&p->row);
        p->row = v;
    }
    pthread_mutex_unlock(&p->lock);
}

void rk_audit_access(const rk_check_item_t *it, const char *decision) {
    rk_queue_t *q = g.access;
    if (!q)
        return;
    access_line_t a;
    copy_str(a.rule, it->rule->id, sizeof a.rule);
    copy_str(a.key, it->key, sizeof a.key);
    copy_str(a.decision, decision, sizeof a.decision);
    a.cost = it->cost;
    a.remaining = it->decision.remaining;
    a.retry_after_ms = it->decision.retry_after_ms;
    if (!rk_queue_push(q, &a))
        atomic_fetch_add_explicit(&g.access_dropped, 1, memory_order_relaxed);
}

uint64_t rk_audit_dropped(void) {
    return atomic_load_explicit(&g.dropped, memory_order_relaxed);
}

void rk_audit_set_observer(void (*fn)(const rk_violation_t *rows, size_t n)) {
    g.observer = fn;
}

/* ---- the writer thread ---------------------------------------------------------- */

/* Logs a write failure at most once a minute (a full disk must not flood the log). */
static void log_failure(const char *what) {
    int64_t now = rk_mono_ms();
    if (g.last_failure_log_ms && now - g.last_failure_log_ms < 60000)
        return;
    g.last_failure_log_ms = now;
    rk_warn("denial log: %s: %s (denials are counted in ratekit_violations_dropped_total)", what,
            sqlite3_errmsg(g.writer));
}

/* Denials in rows (each row's count). */
static uint64_t denials_in(const rk_violation_t *rows, size_t n) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (uint64_t)rows[i].count;
    return total;
}

/* Writes rows in one transaction; on failure their denials are counted as dropped. */
static void write_batch(const rk_violation_t *rows, size_t n) {
    if (sqlite3_exec(g.writer, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        log_failure("cannot begin");
        atomic_fetch_add_explicit(&g.dropped, denials_in(rows, n), memory_order_relaxed);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const rk_violation_t *v = &rows[i];
        sqlite3_bind_int64(g.insert, 1, v->at_ms);
        sqlite3_bind_text(g.insert, 2, v->rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(g.insert, 3, v->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(g.insert, 4, v->mode == RK_VIOLATION_SHADOW ? "shadow" : "enforce", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(g.insert, 5, v->limit);
        sqlite3_bind_int64(g.insert, 6, v->cost);
        sqlite3_bind_text(g.insert, 7, g.instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(g.insert, 8, v->count);
        int rc = sqlite3_step(g.insert);
        sqlite3_reset(g.insert);
        if (rc != SQLITE_DONE) {
            log_failure("cannot insert");
            sqlite3_exec(g.writer, "ROLLBACK", NULL, NULL, NULL);
            atomic_fetch_add_explicit(&g.dropped, denials_in(rows, n), memory_order_relaxed);
            return;
        }
    }
    if (sqlite3_exec(g.writer, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_failure("cannot commit");
        sqlite3_exec(g.writer, "ROLLBACK", NULL, NULL, NULL);
        atomic_fetch_add_explicit(&g.dropped, denials_in(rows, n), memory_order_relaxed);
    }
}

/*
 * A batch being gathered: its distinct rows, and an open-addressing index
 * of them by (rule, key, mode, limit, cost, second) holding row index + 1.
 */
#define MERGE_SLOTS 2048 /* a power of two, over twice RK_AUDIT_BATCH */
typedef struct {
    rk_violation_t rows[RK_AUDIT_BATCH];
    size_t n;
    uint16_t slot[MERGE_SLOTS];
} batch_t;

/* Adds a queued denial to the batch: counted into its group's row, or a new row. */
static void batch_add(batch_t *b, const rk_violation_t *v) {
    int64_t group[4] = {v->at_ms / 1000, v->mode, v->limit, v->cost};
    uint64_t h = rk_fnv1a(RK_FNV1A_INIT, group, sizeof group);
    h = rk_fnv1a(rk_fnv1a(h, v->rule, strlen(v->rule) + 1), v->key, strlen(v->key));
    for (size_t i = (size_t)h & (MERGE_SLOTS - 1);; i = (i + 1) & (MERGE_SLOTS - 1)) {
        if (b->slot[i] == 0) {
            b->rows[b->n] = *v;
            b->slot[i] = (uint16_t)++b->n;
            return;
        }
        rk_violation_t *row = &b->rows[b->slot[i] - 1];
        if (same_group(row, v)) {
            row->count += v->count;
            return;
        }
    }
}

/*
 * Takes what waits in the queue (a queue's worth at most), coalesced into up
 * to RK_AUDIT_BATCH rows; writes them and shows them to the observer.
 * Answers the number of rows.
 */
static size_t flush_rows(batch_t *b) {
    b->n = 0;
    memset(b->slot, 0, sizeof b->slot);
    rk_violation_t v;
    for (size_t taken = 0; b->n < RK_AUDIT_BATCH && taken < RK_AUDIT_QUEUE; taken++) {
        if (!rk_queue_pop(g.rows, &v))
            break;
        batch_add(b, &v);
    }
    if (b->n == 0)
        return 0;
    /* The top keys first: they must not wait for the disk. */
    if (g.observer)
        g.observer(b->rows, b->n);
    if (g.writer)
        write_batch(b->rows, b->n);
    else
        atomic_fetch_add_explicit(&g.dropped, denials_in(b->rows, b->n), memory_order_relaxed);
    return b->n;
}

static void flush_access(void) {
    access_line_t a;
    uint64_t lost = atomic_exchange_explicit(&g.access_dropped, 0, memory_order_relaxed);
    if (lost)
        rk_warn("access log: %llu lines dropped (queue full)", (unsigned long long)lost);
    while (rk_queue_pop(g.access, &a))
        rk_info("check rule=%s key=%s decision=%s cost=%lld remaining=%lld retry_after_ms=%lld",
                a.rule, a.key, a.decision, (long long)a.cost, (long long)a.remaining,
                (long long)a.retry_after_ms);
}

/* Deletes at most RETENTION_BATCH expired rows; answers how many. */
static int purge_expired(void) {
    if (!g.writer || !g.purge)
        return 0;
    sqlite3_bind_int64(g.purge, 1, rk_now_ms() - g.retention_ms);
    sqlite3_bind_int(g.purge, 2, RETENTION_BATCH);
    int rc = sqlite3_step(g.purge);
    sqlite3_reset(g.purge);
    if (rc != SQLITE_DONE) {
        log_failure("cannot delete expired rows");
        return 0;
    }
    return sqlite3_changes(g.writer);
}

static void wait_tick(void) {
    struct timespec ts;
    rk_timespec_in(&ts, CLOCK_REALTIME, TICK_MS);
    pthread_mutex_lock(&g.lock);
    if (g.running)
        pthread_cond_timedwait(&g.wake, &g.lock, &ts);
    pthread_mutex_unlock(&g.lock);
}

static bool is_running(void) {
    pthread_mutex_lock(&g.lock);
    bool r = g.running;
    pthread_mutex_unlock(&g.lock);
    return r;
}

static void *writer_main(void *arg) {
    (void)arg;
    batch_t *batch = malloc(sizeof *batch);
    if (!batch) {
        rk_error("denial log: out of memory; denials are counted as dropped");
        return NULL;
    }
    int64_t last_flush = rk_mono_ms(), next_purge = rk_mono_ms() + 1000;
    for (;;) {
        bool running = is_running();
        take_pending(); /* every tick: a thread's row waits TICK_MS at most */
        int64_t now = rk_mono_ms();
        size_t waiting = rk_queue_size(g.rows);
        /* Waiting for FLUSH_MS lets a flood coalesce; half a queue must not wait longer. */
        if (waiting >= RK_AUDIT_QUEUE / 2 || (waiting > 0 && now - last_flush >= FLUSH_MS) ||
            !running) {
            while (flush_rows(batch) == RK_AUDIT_BATCH && rk_queue_size(g.rows) > 0)
                ;
            last_flush = now;
        }
        flush_access();
        if (!running && rk_queue_size(g.rows) == 0)
            break;
        if (running && now >= next_purge)
            next_purge = now + (purge_expired() == RETENTION_BATCH ? TICK_MS : RETENTION_EVERY_MS);
        if (running)
            wait_tick();
    }
    free(batch);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------- */

static sqlite3 *open_conn(const char *path, char *err, size_t errlen) {
    sqlite3 *conn = rk_rules_db_connect(path, false, err, errlen);
    if (conn)
        sqlite3_exec(conn, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    return conn;
}

rk_status_t rk_audit_start(const char *db_path, const char *instance, int64_t retention_days,
                           char *err, size_t errlen) {
    g.rows = rk_queue_new(RK_AUDIT_QUEUE, sizeof(rk_violation_t));
    g.access = rk_queue_new(ACCESS_QUEUE, sizeof(access_line_t));
    if (!g.rows || !g.access) {
        snprintf(err, errlen, "out of memory for the denial log queue");
        goto fail;
    }
    copy_str(g.instance, instance, sizeof g.instance);
    g.retention_ms = retention_days * 86400000LL;
    g.writer = open_conn(db_path, err, errlen);
    g.reader = g.writer ? open_conn(db_path, err, errlen) : NULL;
    if (!g.writer || !g.reader)
        goto fail;
    if (sqlite3_prepare_v3(g.writer,
                           "INSERT INTO violations (at_ms, rule, key, mode, \"limit\", cost, "
                           "instance, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, SQLITE_PREPARE_PERSISTENT, &g.insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(g.writer,
                           "DELETE FROM violations WHERE id IN (SELECT id FROM violations "
                           "WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)",
                           -1, SQLITE_PREPARE_PERSISTENT, &g.purge, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "the violations table is not usable: %s", sqlite3_errmsg(g.writer));
        goto fail;
    }
    pthread_cond_init(&g.wake, NULL);
    g.running = true;
    if (pthread_create(&g.thread, NULL, writer_main, NULL) != 0) {
        g.running = false;
        pthread_cond_destroy(&g.wake);
        snprintf(err, errlen, "cannot start the denial log thread");
        goto fail;
    }
    return RK_OK;
fail:
    sqlite3_finalize(g.insert);
    sqlite3_finalize(g.purge);
    sqlite3_close(g.writer);
    sqlite3_close(g.reader);
    g.insert = g.purge = NULL;
    g.writer = g.reader = NULL;
    rk_queue_free(g.rows);
    rk_queue_free(g.access);
    g.rows = g.access = NULL;
    return RK_ERR;
}

void rk_audit_stop(void) {
    pthread_mutex_lock(&g.lock);
    bool was = g.running;
    g.running = false;
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.lock);
    if (!was)
        return;
    pthread_join(g.thread, NULL);
    free_pending();
    pthread_cond_destroy(&g.wake);
    sqlite3_finalize(g.insert);
    sqlite3_finalize(g.purge);
    sqlite3_close(g.writer);
    pthread_mutex_lock(&g.read_lock);
    sqlite3_close(g.reader);
    g.reader = NULL;
    pthread_mutex_unlock(&g.read_lock);
    g.insert = g.purge = NULL;
    g.writer = NULL;
    rk_queue_t *rows = g.rows, *access = g.access;
    g.rows = g.access = NULL;
    rk_queue_free(rows);
    rk_queue_free(access);
}

/* ---- reading ---------------------------------------------------------------------- */

rk_status_t rk_audit_query(const rk_violation_query_t *q,
                           bool (*fn)(void *ctx, const rk_violation_row_t *row), void *ctx,
                           bool *more, char *err, size_t errlen) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, at_ms, rule, key, mode, \"limit\", cost, count FROM violations "
             "WHERE id < ?1 AND at_ms >= ?2 AND at_ms <= ?3%s%s ORDER BY id DESC LIMIT ?7",
             q->rule ? " AND rule = ?4" : "", q->key ? " AND key IN (?5, ?6)" : "");
    *more = false;
    pthread_mutex_lock(&g.read_lock);
    sqlite3_stmt *st = NULL;
    if (!g.reader || sqlite3_prepare_v2(g.reader, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", g.reader ? sqlite3_errmsg(g.reader) : "the log is closed");
        pthread_mutex_unlock(&g.read_lock);
        return RK_ERR;
    }
    char normalized[RK_STORE_KEY_MAX + 1];
    sqlite3_bind_int64(st, 1, q->before_id);
    sqlite3_bind_int64(st, 2, q->from_ms);
    sqlite3_bind_int64(st, 3, q->to_ms);
    if (q->rule)
        sqlite3_bind_text(st, 4, q->rule, -1, SQLITE_STATIC);
    if (q->key) {
        rk_store_normalize_key(q->key, strlen(q->key), normalized);
        sqlite3_bind_text(st, 5, q->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, normalized, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 7, (int64_t)q->limit + 1);
    size_t seen = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (seen == q->limit) {
            *more = true;
            rc = SQLITE_DONE;
            break;
        }
        rk_violation_row_t row = {0};
        row.id = sqlite3_column_int64(st, 0);
        row.v.at_ms = sqlite3_column_int64(st, 1);
        copy_str(row.v.rule, (const char *)sqlite3_column_text(st, 2), sizeof row.v.rule);
        copy_str(row.v.key, (const char *)sqlite3_column_text(st, 3), sizeof row.v.key);
        const char *mode = (const char *)sqlite3_column_text(st, 4);
        row.v.mode = mode && !strcmp(mode, "shadow") ? RK_VIOLATION_SHADOW : RK_VIOLATION_ENFORCE;
        row.v.limit = sqlite3_column_int64(st, 5);
        row.v.cost = sqlite3_column_int64(st, 6);
        row.v.count = sqlite3_column_int64(st, 7);
        seen++;
        if (!fn(ctx, &row)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s", sqlite3_errmsg(g.reader));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&g.read_lock);
    return rc == SQLITE_DONE ? RK_OK : RK_ERR;
}

/* ---- formats ----------------------------------------------------------------------- */

void rk_csv_field(rk_jw_t *w, const char *s) {
    size_t n = strlen(s);
    /* A spreadsheet runs a cell starting with one of these as a formula, and
     * a client chooses its own key: such a field is written as text, with
     * the leading ' spreadsheets read as "text follows" (OWASP's advice). */
    bool formula = n > 0 && strchr("=+-@\t\r", s[0]);
    bool quote = formula || (n > 0 && (s[0] == ' ' || s[n - 1] == ' '));
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        rk_jw_raw(w, s, n);
        return;
    }
    rk_jw_raw(w, formula ? "\"'" : "\"", formula ? 2 : 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            rk_jw_raw(w, "\"\"", 2);
        else
            rk_jw_raw(w, p, 1);
    }
    rk_jw_raw(w, "\"", 1);
}
