/*
 * fuzz_import.c — an import document from the network: its rules
 * validated into canonical forms, then its overrides checked against them
 * into the rows an import writes. Rows that come out must be what the
 * writer relies on: sorted by rule then key, each pair once, each naming a
 * rule of the document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rule.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The document's valid rules, canonical (a new array). */
static cJSON *canonical_rules(const cJSON *doc) {
    cJSON *out = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "rules")) {
        cJSON *errors = cJSON_CreateArray();
        cJSON *canon = rk_rule_canonical(r, errors);
        if (canon)
            cJSON_AddItemToArray(out, canon);
        cJSON_Delete(errors);
    }
    return out;
}

static const char *text(const cJSON *row, const char *name) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, name));
}

static void check_rows(const cJSON *rows, const cJSON *rules) {
    const cJSON *prev = NULL, *row;
    cJSON_ArrayForEach(row, rows) {
        bool named = false;
        const cJSON *r;
        cJSON_ArrayForEach(r, rules) {
            named = named || !strcmp(text(r, "id"), text(row, "rule"));
        }
        if (!named || !text(row, "key")[0])
            abort();
        if (prev) {
            int c = strcmp(text(prev, "rule"), text(row, "rule"));
            if (c > 0 || (c == 0 && strcmp(text(prev, "key"), text(row, "key")) >= 0))
                abort();
        }
        prev = row;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return 0;
    }
    cJSON *rules = canonical_rules(doc);
    cJSON *errors = cJSON_CreateArray();
    int expired = 0;
    cJSON *rows = rk_overrides_from_document(cJSON_GetObjectItemCaseSensitive(doc, "overrides"),
                                             rules, 1700000000000, errors, &expired);
    if (rows)
        check_rows(rows, rules);
    cJSON_Delete(rows);
    cJSON_Delete(errors);
    cJSON_Delete(rules);
    cJSON_Delete(doc);
    return 0;
}
