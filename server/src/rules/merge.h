/*
 * merge.h — the three-way merge of two instances' changes made at the same
 * time (rules/sync.c).
 *
 * Every instance publishes its whole ruleset (rules, overrides, tokens,
 * lists) to Redis, and the last one published is everyone's. Two changes
 * made on two instances within the same moment (a token revoked on one, a
 * rule created on the other) would then lose one of them. So an instance
 * with a change of its own that finds another instance's document newer
 * than the one it last saw (the base) takes that document's changes, keeps
 * its own, and publishes the result.
 */
#ifndef RK_MERGE_H
#define RK_MERGE_H

#include <cjson/cJSON.h>

/* The kinds of rows a ruleset document carries, by their member name. */
typedef enum {
    RK_MERGE_RULES,
    RK_MERGE_OVERRIDES,
    RK_MERGE_TOKENS,
    RK_MERGE_LISTS
} rk_merge_kind_t;

/*
 * The rows (arrays of objects) of one kind, merged: remote's rows, except
 * those local created, changed or deleted since base, which are local's
 * (a row both changed is local's: the change that goes out last). A list
 * entry local created whose id remote gave another entry takes a new id.
 * A new array (the rows copied); NULL when out of memory.
 */
cJSON *rk_merge_rows(rk_merge_kind_t kind, const cJSON *base, const cJSON *remote,
                     const cJSON *local);

#endif
