/*
 * merge.c — see merge.h.
 *
 * Each side's rows are indexed by their identity (a rule's id, an
 * override's rule and key, a token's id, a list entry's list, kind, value
 * and source), sorted, and looked up by binary search: a ruleset may hold
 * tens of thousands of rules.
 */
#include "merge.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rule.h"

typedef struct {
    char *name; /* the row's identity */
    const cJSON *row;
} entry_t;

typedef struct {
    entry_t *at;
    size_t n;
} index_t;

static const char *text(const cJSON *row, const char *member) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, member);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The identity of a row of kind (malloc'd; NULL when out of memory). */
static char *identity(rk_merge_kind_t kind, const cJSON *row) {
    const char *a = "", *b = "", *c = "", *d = "";
    switch (kind) {
    case RK_MERGE_RULES:
    case RK_MERGE_TOKENS:
        a = text(row, "id");
        break;
    case RK_MERGE_OVERRIDES:
        a = text(row, "rule");
        b = text(row, "key");
        break;
    case RK_MERGE_LISTS: /* ids are given by each instance: two may give the same */
        a = text(row, "list");
        b = text(row, "kind");
        c = text(row, "value");
        d = text(row, "source");
        break;
    }
    size_t len = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 4;
    char *name = malloc(len);
    if (name)
        snprintf(name, len, "%s\n%s\n%s\n%s", a, b, c, d);
    return name;
}

static int by_name(const void *x, const void *y) {
    return strcmp(((const entry_t *)x)->name, ((const entry_t *)y)->name);
}

static void index_free(index_t *ix) {
    for (size_t i = 0; i < ix->n; i++)
        free(ix->at[i].name);
    free(ix->at);
    ix->at = NULL;
    ix->n = 0;
}

static bool index_rows(rk_merge_kind_t kind, const cJSON *rows, index_t *ix) {
    ix->n = 0;
    ix->at = calloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *ix->at);
    if (!ix->at)
        return false;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        char *name = identity(kind, row);
        if (!name) {
            index_free(ix);
            return false;
        }
        ix->at[ix->n++] = (entry_t){name, row};
    }
    qsort(ix->at, ix->n, sizeof *ix->at, by_name);
    return true;
}

static const cJSON *find(const index_t *ix, const char *name) {
    entry_t key = {(char *)name, NULL};
    const entry_t *e = bsearch(&key, ix->at, ix->n, sizeof *ix->at, by_name);
    return e ? e->row : NULL;
}

/* A list entry's id, which each instance gives. */
static bool entry_id(const char *name) {
    return !strcmp(name, "id");
}

/* Whether every member of a but those skip names is in b, alike. */
static bool members_in(const cJSON *a, const cJSON *b, bool (*skip)(const char *name)) {
    const cJSON *m;
    cJSON_ArrayForEach(m, a) {
        if (skip(m->string))
            continue;
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(b, m->string);
        if (!other || !cJSON_Compare(m, other, true))
            return false;
    }
    return true;
}

/*
 * Whether two rules say the same (their stored versions and times aside).
 * Rules as stored are canonical, so comparing their members mostly tells;
 * when it does not, their canonical forms do (a rule written by hand into
 * Redis, a burst of an earlier version).
 */
static bool same_rule(const cJSON *a, const cJSON *b) {
    if (members_in(a, b, rk_rule_own_member) && members_in(b, a, rk_rule_own_member))
        return true;
    cJSON *errors = cJSON_CreateArray();
    cJSON *da = cJSON_Duplicate(a, true), *db = cJSON_Duplicate(b, true);
    rk_rule_drop_ignored_burst(da); /* stored rules, as rk_rule_drop_ignored_burst says */
    rk_rule_drop_ignored_burst(db);
    cJSON *ca = da ? rk_rule_canonical(da, errors) : NULL;
    cJSON *cb = db ? rk_rule_canonical(db, errors) : NULL;
    bool same = ca && cb && cJSON_Compare(ca, cb, true);
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    cJSON_Delete(da);
    cJSON_Delete(db);
    cJSON_Delete(errors);
    return same;
}

/* Whether two list entries are alike but for their ids. */
static bool same_entry(const cJSON *a, const cJSON *b) {
    return members_in(a, b, entry_id) && members_in(b, a, entry_id);
}

/* Whether a row is as it was (both absent counts). */
static bool unchanged(rk_merge_kind_t kind, const cJSON *now, const cJSON *was) {
    if (!now || !was)
        return now == was;
    if (kind == RK_MERGE_RULES)
        return same_rule(now, was);
    if (kind == RK_MERGE_LISTS)
        return same_entry(now, was);
    return cJSON_Compare(now, was, true);
}

/* Sets member name of rule to a copy of value. false when out of memory. */
static bool set_member(cJSON *rule, const char *name, const cJSON *value) {
    cJSON *copy = cJSON_Duplicate(value, true);
    if (!copy)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(rule, name))
        return cJSON_ReplaceItemInObjectCaseSensitive(rule, name, copy);
    return cJSON_AddItemToObject(rule, name, copy);
}

/*
 * A rule changed on both sides since base (was): remote's, with the members
 * this side changed taken from mine, so that a limit changed there and a
 * description here both hold (a member changed on both sides is mine's).
 * Mine whole when that mix is not a valid rule (an algorithm changed there,
 * a burst here). NULL when out of memory.
 */
static cJSON *merged_rule(const cJSON *remote, const cJSON *mine, const cJSON *was) {
    cJSON *out = cJSON_Duplicate(remote, true);
    if (!out)
        return NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, mine) {
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(was, m->string);
        if (rk_rule_own_member(m->string) || (before && cJSON_Compare(m, before, true)))
            continue; /* not changed here */
        if (!set_member(out, m->string, m)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    cJSON *errors = cJSON_CreateArray();
    cJSON *canon = errors ? rk_rule_canonical(out, errors) : NULL;
    if (!canon) {
        cJSON_Delete(out);
        out = cJSON_Duplicate(mine, true);
    }
    cJSON_Delete(canon);
    cJSON_Delete(errors);
    return out;
}

static bool add_copy(cJSON *out, const cJSON *row) {
    cJSON *copy = cJSON_Duplicate(row, true);
    return copy && cJSON_AddItemToArray(out, copy);
}

/*
 * Gives the list entries local created a new id where one of remote's has
 * theirs: ids are the entries' names in the API, given by each instance.
 */
static void renumber_entries(cJSON *out, const index_t *remote, const index_t *local,
                             const index_t *base) {
    int64_t top = 0;
    cJSON *row;
    cJSON_ArrayForEach(row, out) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
        if (cJSON_IsNumber(id) && id->valuedouble > (double)top)
            top = (int64_t)id->valuedouble;
    }
    cJSON_ArrayForEach(row, out) {
        char *name = identity(RK_MERGE_LISTS, row);
        bool created_here = name && find(local, name) && !find(remote, name) && !find(base, name);
        free(name);
        if (!created_here)
            continue;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
        const cJSON *other;
        bool taken = false;
        cJSON_ArrayForEach(other, out) {
            const cJSON *oid = cJSON_GetObjectItemCaseSensitive(other, "id");
            taken |= other != row && cJSON_IsNumber(oid) && cJSON_IsNumber(id) &&
                     oid->valuedouble == id->valuedouble;
        }
        if (taken)
            cJSON_ReplaceItemInObjectCaseSensitive(row, "id", cJSON_CreateNumber((double)++top));
    }
}

/* Remote's rows, local's where local changed them since base (see merge.h). */
static bool merge_into(cJSON *out, rk_merge_kind_t kind, const cJSON *remote, const index_t *rix,
                       const index_t *lix, const index_t *bix) {
    const cJSON *row;
    cJSON_ArrayForEach(row, remote) {
        char *name = identity(kind, row);
        if (!name)
            return false;
        const cJSON *mine = find(lix, name), *was = find(bix, name);
        free(name);
        /* unchanged here, or changed alike on both sides: there's; NULL: deleted here */
        const cJSON *kept = unchanged(kind, mine, was) || unchanged(kind, mine, row) ? row : mine;
        if (kind == RK_MERGE_RULES && kept && kept == mine && was && !unchanged(kind, row, was)) {
            cJSON *both = merged_rule(row, mine, was); /* changed on both sides */
            if (!both || !cJSON_AddItemToArray(out, both))
                return false;
            continue;
        }
        if (kept && !add_copy(out, kept))
            return false;
    }
    for (size_t i = 0; i < lix->n; i++) {
        const entry_t *e = &lix->at[i];
        if (find(rix, e->name))
            continue; /* decided above */
        /* Not in remote: created here, or changed here while deleted there, is kept;
         * unchanged here, it was deleted there. */
        if (!unchanged(kind, e->row, find(bix, e->name)) && !add_copy(out, e->row))
            return false;
    }
    return true;
}

cJSON *rk_merge_rows(rk_merge_kind_t kind, const cJSON *base, const cJSON *remote,
                     const cJSON *local) {
    index_t bix = {0}, rix = {0}, lix = {0};
    cJSON *out = cJSON_CreateArray();
    bool ok = out && index_rows(kind, base, &bix) && index_rows(kind, remote, &rix) &&
              index_rows(kind, local, &lix) && merge_into(out, kind, remote, &rix, &lix, &bix);
    if (ok && kind == RK_MERGE_LISTS)
        renumber_entries(out, &rix, &lix, &bix);
    index_free(&bix);
    index_free(&rix);
    index_free(&lix);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
