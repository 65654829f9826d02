/*
 * fuzz_forwarded.c — client addresses: CIDR lists, and the walk of
 * X-Forwarded-For / Forwarded / X-Real-IP. Input lines: trusted CIDRs, peer,
 * X-Forwarded-For, Forwarded, X-Real-IP.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check/client_ip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *field[5] = {text, NULL, NULL, NULL, NULL};
    for (int i = 1; i < 5 && field[i - 1]; i++) {
        char *nl = strchr(field[i - 1], '\n');
        if (nl) {
            *nl = '\0';
            field[i] = nl + 1;
        }
    }
    rk_cidr_list_t trusted;
    char err[128];
    if (rk_cidr_list_parse(field[0], &trusted, err, sizeof err) != RK_OK) {
        free(text);
        return 0;
    }
    rk_ip_t peer;
    if (!field[1] || rk_ip_parse(field[1], strlen(field[1]), &peer) != RK_OK)
        rk_ip_parse("127.0.0.1", 9, &peer);
    rk_ip_t client = rk_client_ip(&peer, field[2], field[3], field[4], &trusted);
    char key[80];
    rk_ip_key(&client, 64, key, sizeof key);
    /* an untrusted peer is never replaced */
    if (!rk_cidr_list_contains(&trusted, &peer) && memcmp(&client, &peer, sizeof peer) != 0)
        abort();
    rk_cidr_list_free(&trusted);
    free(text);
    return 0;
}
