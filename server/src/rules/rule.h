/*
 * rule.h — the rule model: validation of the JSON a user sends, its
 * canonical stored form, and its compilation into an rk_rule_t.
 *
 * The canonical form is what is stored and answered (without version and
 * timestamps, which rules_db.c adds): every field present, the window as
 * window_ms, methods upper-case, hosts lower-case, defaults filled in
 * except burst, which stays null until given so that it keeps following
 * the limit.
 */
#ifndef RK_RULE_H
#define RK_RULE_H

#include <cjson/cJSON.h>

#include "rules.h"

#define RK_RULE_DESCRIPTION_MAX 1024 /* bytes */
#define RK_RULE_METHODS_MAX 16
#define RK_RULE_HOSTS_MAX 32
#define RK_RULE_HOST_LEN_MAX 253
#define RK_RULE_HEADERS_MAX 16
#define RK_RULE_HEADER_VALUE_MAX 256
#define RK_RULE_PRIORITY_MIN (-1000000)
#define RK_RULE_PRIORITY_MAX 1000000
#define RK_RULE_ERRORS_MAX 64 /* problems listed in one answer */

/*
 * Validates doc (a parsed rule document) and returns its canonical form, a
 * new cJSON object owned by the caller. On any problem returns NULL and
 * appends one {"field", "message"} object per problem to errors (an array
 * owned by the caller). The read-only fields version, created_at and
 * updated_at are accepted and ignored, so that a rule read back from the
 * API (or an export) can be sent again as it is.
 */
cJSON *rk_rule_canonical(const cJSON *doc, cJSON *errors);

/*
 * The entity tag of a rule as read (canonical, as stored): a quoted hash of
 * its content without version, created_at and updated_at, which each
 * instance keeps for itself, so that instances sharing a ruleset give one
 * rule the same tag. An HTTP ETag and the If-Match of a change.
 */
/* Whether a rule's member is one each instance keeps for itself
 * (version, created_at, updated_at): no part of what the rule says. */
bool rk_rule_own_member(const char *name);

#define RK_RULE_ETAG_SIZE 19 /* "\"" 16 hex digits "\"" and NUL */
void rk_rule_etag(const cJSON *rule, char out[RK_RULE_ETAG_SIZE]);

/* Whether s is a rule id: 1 to 64 lower-case letters, digits, '_' or '-',
 * starting with a letter or digit. */
bool rk_rule_id_valid(const char *s);

/*
 * Removes from doc (a rule as stored or published) the burst, its own and
 * its plans', when its algorithm ignores bursts (only token_bucket, gcra and
 * leaky_bucket use one). Such a burst was accepted before it was refused as
 * input: a rule stored, kept in the history or published in Redis with one
 * must still validate, as it still works. Call it on stored documents only,
 * before rk_rule_canonical; new input keeps its burst, and is refused.
 */
void rk_rule_drop_ignored_burst(cJSON *doc);

/*
 * Parses a duration: "500ms", "30s", "1m", "1h", "1d" (whole numbers only).
 * RK_ERR when malformed or outside 1..RK_WINDOW_MS_MAX.
 */
rk_status_t rk_duration_parse(const char *text, int64_t *ms);

/*
 * Compiles a canonical rule (as returned by rk_rule_canonical) into out,
 * with the given per-rule version. Allocates the match and the plans: free
 * with rk_rule_free. RK_ERR when the document is not canonical or on OOM.
 */
rk_status_t rk_rule_compile(const cJSON *canonical, int64_t version, rk_rule_t *out);
void rk_rule_free(rk_rule_t *rule);

/* Appends {"field": field, "message": <printf>} to errors (up to the bound). */
void rk_rule_error(cJSON *errors, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends each of problems to errors, its field named "<list>[i].<field>" (a document's item). */
void rk_rule_errors_of_item(cJSON *errors, const char *list, int i, const cJSON *problems);

#endif
