/*
 * fuzz_rule.c — a rule document from the network: JSON parsing, validation
 * into the canonical form, and compilation into a live rule.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cJSON *doc = cJSON_ParseWithLength(text, size);
    cJSON *errors = cJSON_CreateArray();
    cJSON *canon = doc ? rk_rule_canonical(doc, errors) : NULL;
    if (canon) {
        rk_rule_t rule;
        memset(&rule, 0, sizeof rule);
        if (rk_rule_compile(canon, 1, &rule) == RK_OK)
            rk_rule_free(&rule);
        cJSON_Delete(canon);
    }
    cJSON_Delete(errors);
    cJSON_Delete(doc);
    free(text);
    return 0;
}
