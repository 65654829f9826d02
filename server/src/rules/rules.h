/*
 * rules.h — the rules as the rest of ratekitd sees them.
 *
 * Rules are stored in SQLite (rules_db.c) and served to the check path as
 * an immutable compiled snapshot (snapshot.c), swapped atomically on every
 * change. A reader never waits for a writer: rk_rules_current() is one
 * atomic load, and a replaced snapshot is freed only after a grace period
 * no check can outlive (RK_RULES_GRACE_MS).
 */
#ifndef RK_RULES_H
#define RK_RULES_H

#include "../limiter/limiter.h"
#include "../http/http.h"
#include "../check/match.h"

#define RK_RULE_ID_MAX 64
#define RK_RULES_GRACE_MS 10000

/* Bounds of a rule's parts (validated in rule.c). */
#define RK_KEY_CHAIN_MAX 8 /* parts of "key" */
#define RK_KEY_TUPLE_MAX 4 /* atoms of one part joined by '+' */
#define RK_KEY_NAME_MAX 64 /* header name or JWT claim of an atom */
#define RK_PLANS_MAX 32
#define RK_PLAN_NAME_MAX 64

typedef enum { RK_MODE_ENFORCE = 0, RK_MODE_SHADOW, RK_MODE_OFF } rk_mode_t;

/* What a check does when the store fails. */
typedef enum {
    RK_FAIL_DEFAULT = -1, /* rule setting only: use RATEKIT_FAIL_MODE */
    RK_FAIL_OPEN = 0,
    RK_FAIL_CLOSED,
    RK_FAIL_LOCAL
} rk_fail_mode_t;

/* Where one atom of a key comes from (DESIGN.md §2 "key"). */
typedef enum {
    RK_KEY_IP = 0,
    RK_KEY_USER,    /* X-User-Id */
    RK_KEY_API_KEY, /* X-API-Key */
    RK_KEY_HEADER,  /* header:<Name> */
    RK_KEY_JWT,     /* jwt:<claim> */
    RK_KEY_ROUTE,   /* method and matched path */
    RK_KEY_GLOBAL   /* one bucket for all */
} rk_key_source_t;

typedef struct {
    rk_key_source_t source;
    char name[RK_KEY_NAME_MAX + 1]; /* header name or claim; "" otherwise */
} rk_key_atom_t;

/* One part of the key chain: a single atom, or a tuple ("ip+route"). */
typedef struct {
    rk_key_atom_t atoms[RK_KEY_TUPLE_MAX];
    size_t natoms;
} rk_key_part_t;

/* A per-plan override; fields not overridden are copied from the rule. */
typedef struct {
    char name[RK_PLAN_NAME_MAX + 1];
    rk_limit_t limit; /* burst resolved */
} rk_plan_t;

/*
 * A per-client exception to a rule (PUT /api/v1/rules/{id}/overrides/{key}):
 * the client key exactly as check results report it, and the rule's limit
 * with that client's limit (and burst and window, when given).
 */
typedef struct {
    char *key;
    rk_limit_t limit;   /* burst resolved */
    int64_t expires_ms; /* epoch ms; 0: never */
} rk_override_t;

/* One compiled rule: what the check path needs, nothing it must parse. */
typedef struct {
    char id[RK_RULE_ID_MAX + 1];
    rk_limit_t limit; /* burst resolved */
    rk_mode_t mode;
    int priority;
    rk_fail_mode_t fail_mode;
    int64_t version;
    rk_match_t match;                    /* compiled; an empty match covers every request */
    rk_key_part_t key[RK_KEY_CHAIN_MAX]; /* first part the request has wins */
    size_t nkey;
    rk_plan_t *plans; /* owned by the snapshot */
    size_t nplans;
    rk_override_t *overrides; /* sorted by key; owned by the snapshot */
    size_t noverrides;
} rk_rule_t;

typedef struct rk_ruleset rk_ruleset_t;

/*
 * Opens (creating and migrating) the SQLite file and loads the first
 * snapshot. RK_ERR with a message in err on failure.
 */
rk_status_t rk_rules_open(const char *db_path, char *err, size_t errlen);
/* Starts the thread that notices other processes' changes (data_version). */
rk_status_t rk_rules_start_reload(void);
void rk_rules_close(void);
/*
 * Whether the database file was deleted or replaced since it was opened:
 * SQLite still writes to the file it opened, which the next start will not
 * find, so the admin plane refuses changes meanwhile. One stat(2).
 */
bool rk_rules_db_moved(void);

/* The live snapshot; valid for RK_RULES_GRACE_MS after the next swap. */
const rk_ruleset_t *rk_rules_current(void);
const rk_rule_t *rk_ruleset_find(const rk_ruleset_t *set, const char *id);
size_t rk_ruleset_count(const rk_ruleset_t *set);
const rk_rule_t *rk_ruleset_at(const rk_ruleset_t *set, size_t i); /* priority order */
int64_t rk_ruleset_version(const rk_ruleset_t *set);
/* The override of a plan, or NULL when the rule has none by that name. */
const rk_plan_t *rk_rule_plan(const rk_rule_t *rule, const char *plan);
/* The live override of a (normalised) client key at now_ms, or NULL. */
const rk_override_t *rk_rule_override(const rk_rule_t *rule, const char *key, int64_t now_ms);

/*
 * Called after a change of the rules commits in this process, on the thread
 * that made it (an admin thread): the new ruleset version, the rule id (NULL
 * for an import) and "create", "update", "delete", "restore" or "import".
 * Changes made by another process are reported once noticed, by the reload
 * thread, as (version, NULL, "reload"). Must not block. NULL removes the
 * listener.
 */
void rk_rules_set_change_listener(void (*fn)(int64_t version, const char *rule_id,
                                             const char *action));

/* Admin API routes for /api/v1/rules... (rules_api.c). */
extern const rk_route_t rk_rules_routes[];
extern const size_t rk_rules_routes_len;

/* Admin API routes for /api/v1/rules/{id}/overrides... (overrides_api.c). */
extern const rk_route_t rk_overrides_routes[];
extern const size_t rk_overrides_routes_len;

/*
 * The overrides in the rules' export and import (overrides_api.c).
 * rk_overrides_for_export: every override not expired of the rules (an
 * export's, sorted by id), in the API's form, as a new array, with the
 * ruleset version read alongside; NULL when the database fails.
 * rk_overrides_from_document: an import's "overrides" (list), each
 * validated as a PUT against its rule of rules (the import's canonical
 * rules), as rows for rk_rules_db_import sorted by rule and key; those
 * expired at now_ms are left out and counted in *expired. NULL when
 * anything is wrong, each problem in errors as "overrides[i].<field>".
 */
struct rk_rules_db;
cJSON *rk_overrides_for_export(struct rk_rules_db *db, const cJSON *rules, int64_t *version);
cJSON *rk_overrides_from_document(const cJSON *list, const cJSON *rules, int64_t now_ms,
                                  cJSON *errors, int *expired);

#endif
