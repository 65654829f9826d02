/*
 * audit.h — the denial log. Every denial and every shadow would-deny is
 * counted by the check path into its thread's pending row, or queued (a
 * bounded queue that never blocks: when full, the denials are dropped and
 * counted), and written to SQLite's `violations` table by one background
 * thread, in transactions of up to RK_AUDIT_BATCH rows or every 500 ms.
 * The denials of one rule and key (same mode, limit and cost) within one
 * second become one row with a count, per thread and again per batch: a
 * client hammering a key costs a few rows a second, not one per request (a
 * row takes about 128 bytes with its indexes: at 100,000 denials a second,
 * a row each would be 1.1 TB a day). Rows past the retention are deleted a
 * little at a time. The same thread writes the access log
 * (RATEKIT_ACCESS_LOG=1), also queued.
 */
#ifndef RK_AUDIT_H
#define RK_AUDIT_H

#include "../check/check.h"
#include "../http/jsonw.h"

#define RK_AUDIT_QUEUE 65536 /* rows waiting to be written */
#define RK_AUDIT_BATCH 1000  /* rows per transaction */

typedef enum { RK_VIOLATION_ENFORCE = 0, RK_VIOLATION_SHADOW } rk_violation_mode_t;

/* Denials as queued (count 1) and stored (count of them since at_ms, within its second). */
typedef struct {
    int64_t at_ms; /* epoch ms of the first */
    int64_t count;
    int64_t limit;
    int64_t cost;
    uint8_t mode; /* rk_violation_mode_t */
    char rule[RK_RULE_ID_MAX + 1];
    char key[RK_STORE_KEY_MAX + 1];
} rk_violation_t;

typedef struct {
    int64_t id;
    rk_violation_t v;
} rk_violation_row_t;

/*
 * Opens the writer's and the readers' connections to db_path (already
 * migrated by rk_rules_open) and starts the writer thread. instance names
 * this process in the rows; rows older than retention_days are deleted.
 */
rk_status_t rk_audit_start(const char *db_path, const char *instance, int64_t retention_days,
                           char *err, size_t errlen);
/* Writes what is queued, stops the thread, closes. Call after the listeners stopped. */
void rk_audit_stop(void);

/* Hot path: logs a denial of it (a denied or shadow-denied item) at at_ms. Never blocks. */
void rk_audit_record(const rk_check_item_t *it, int64_t at_ms);
/* Hot path (RATEKIT_ACCESS_LOG): queues an access-log line. Never blocks. */
void rk_audit_access(const rk_check_item_t *it, const char *decision);

/* Denials lost: dropped when the queue was full, or not written because SQLite failed. */
uint64_t rk_audit_dropped(void);

/*
 * Called on the writer thread with each batch taken from the queue (the
 * stats module counts the most denied keys from them). Set before start.
 */
void rk_audit_set_observer(void (*fn)(const rk_violation_t *rows, size_t n));

/* A page of the log: filters (NULL / open when absent), newest first. */
typedef struct {
    const char *rule;
    const char *key;        /* matched as given and in its store form */
    int64_t from_ms, to_ms; /* inclusive; INT64_MIN / INT64_MAX: open */
    int64_t before_id;      /* keyset cursor: ids below it; INT64_MAX: from the newest */
    size_t limit;
} rk_violation_query_t;

/*
 * Calls fn for each matching row, newest first, at most q->limit rows;
 * *more tells whether another row follows. fn answers false to stop.
 * RK_ERR (err set) when SQLite fails.
 */
rk_status_t rk_audit_query(const rk_violation_query_t *q,
                           bool (*fn)(void *ctx, const rk_violation_row_t *row), void *ctx,
                           bool *more, char *err, size_t errlen);

/* Appends one CSV field (RFC 4180: quoted when it holds , " CR LF or edge
 * spaces); one a spreadsheet would run as a formula (= + - @ TAB CR first) is
 * written quoted, as text after a '. */
void rk_csv_field(rk_jw_t *w, const char *s);

#endif
