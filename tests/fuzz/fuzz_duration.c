/*
 * fuzz_duration.c — durations ("500ms", "30s", "1d") from rule documents.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char text[64];
    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t ms = 0;
    if (rk_duration_parse(text, &ms) == RK_OK && (ms < 1 || ms > RK_WINDOW_MS_MAX))
        abort(); /* an accepted duration is always within the bounds */
    return 0;
}
