/*
 * lists.h — safelist and denylist: clients (CIDRs or keys) that skip every
 * rule, or are refused with 403, before any rule is looked at; and
 * temporary bans, which are denylist entries with an expiry.
 *
 * Entries live in SQLite; the check path reads an immutable in-memory
 * snapshot (one atomic load, no lock), rebuilt after every change here and
 * when another process changes the file (PRAGMA data_version).
 */
#ifndef RK_LISTS_H
#define RK_LISTS_H

#include "../check/client_ip.h"
#include "../http/http.h"

#define RK_LISTS_MAX_ENTRIES 100000

typedef enum { RK_LIST_NONE = 0, RK_LIST_SAFE, RK_LIST_DENY } rk_list_verdict_t;

rk_status_t rk_lists_open(const char *db_path, char *err, size_t errlen);
void rk_lists_close(void);
/* Rebuilds the snapshot when another process changed the file (cheap; the
 * rules reload thread calls it). */
void rk_lists_poll(void);

/* The verdict for a client address; denylist wins over safelist. */
rk_list_verdict_t rk_lists_check_ip(const rk_ip_t *ip, int64_t now_ms);
/* The verdict for a client key ("user:42", or a direct check's key). */
rk_list_verdict_t rk_lists_check_key(const char *key, int64_t now_ms);

/* The write connection, locked (lists_api.c); unlock(true) after a change
 * rebuilds the snapshot before the lock is released. */
struct sqlite3;
struct sqlite3 *rk_lists_db_lock(void);
void rk_lists_db_unlock(bool changed);

/*
 * For instances that share only Redis (rules/sync.c). The hook is called
 * after every change made through rk_lists_db_unlock (never by
 * rk_lists_replace), on the calling thread, and must not block.
 * rk_lists_export answers every entry as stored (times in epoch ms) as a
 * new cJSON array, NULL when SQLite fails; rk_lists_row_valid tells whether
 * a row of another instance's export has every field of a stored entry;
 * rk_lists_replace makes the lists exactly rows (each valid) in one
 * transaction and rebuilds the snapshot.
 */
void rk_lists_set_change_hook(void (*fn)(void));
cJSON *rk_lists_export(void);
bool rk_lists_row_valid(const cJSON *row);
/* Whether no entry is in force (the snapshot: one atomic load). */
bool rk_lists_empty(void);
rk_status_t rk_lists_replace(const cJSON *rows);

extern const rk_route_t rk_lists_routes[];
extern const size_t rk_lists_routes_len;

#endif
