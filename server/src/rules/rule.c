/*
 * rule.c — validation, canonical form and compilation of one rule.
 *
 * Validation collects every problem it finds (up to RK_RULE_ERRORS_MAX)
 * rather than stopping at the first, so that a user fixes a rule in one
 * round trip. Numbers are read from valuedouble and range-checked here:
 * cJSON's valueint clamps silently.
 */
#include "rule.h"

#include <openssl/sha.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------ */

void rk_rule_error(cJSON *errors, const char *field, const char *fmt, ...) {
    if (!errors || cJSON_GetArraySize(errors) >= RK_RULE_ERRORS_MAX)
        return;
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "field", field);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddItemToArray(errors, e);
}

void rk_rule_errors_of_item(cJSON *errors, const char *list, int i, const cJSON *problems) {
    const cJSON *p;
    cJSON_ArrayForEach(p, problems) {
        const char *field = cJSON_GetObjectItemCaseSensitive(p, "field")->valuestring;
        char name[160];
        snprintf(name, sizeof name, "%s[%d]%s%.128s", list, i, *field ? "." : "", field);
        rk_rule_error(errors, name, "%s",
                      cJSON_GetObjectItemCaseSensitive(p, "message")->valuestring);
    }
}

/* ---- small readers ------------------------------------------------------------ */

/* An integer within [min, max] (exact: no fraction, no overflow). */
static bool read_int(const cJSON *item, int64_t min, int64_t max, int64_t *out) {
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    if (!(d >= (double)min && d <= (double)max)) /* also refuses NaN */
        return false;
    int64_t v = (int64_t)d;
    if ((double)v != d)
        return false;
    *out = v;
    return true;
}

bool rk_rule_id_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > RK_RULE_ID_MAX)
        return false;
    if (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!islower(c) && !isdigit(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

/* RFC 9110 token characters, minus '+' (the tuple separator of keys). */
static bool header_name_valid(const char *s, size_t n) {
    if (n == 0 || n > RK_KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("!#$%&'*-.^_`|~", c))
            return false;
    }
    return true;
}

/* JWT claim names: letters, digits, '_', '-', '.'. */
static bool claim_valid(const char *s, size_t n) {
    if (n == 0 || n > RK_KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool plan_name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > RK_PLAN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

/* Host names as matched: lower-case letters, digits, '-', '.', an optional "*." in front. */
static bool host_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > RK_RULE_HOST_LEN_MAX)
        return false;
    const char *p = s;
    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return false;
        p += 2;
    }
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && c != '-' && c != '.')
            return false;
    }
    return true;
}

rk_status_t rk_duration_parse(const char *text, int64_t *ms) {
    const char *p = text;
    int64_t n = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) {
        if (++digits > 12) /* more than any bounded window; no overflow below */
            return RK_ERR;
        n = n * 10 + (*p - '0');
        p++;
    }
    if (digits == 0)
        return RK_ERR;
    int64_t unit;
    if (!strcmp(p, "ms"))
        unit = 1;
    else if (!strcmp(p, "s"))
        unit = 1000;
    else if (!strcmp(p, "m"))
        unit = 60 * 1000;
    else if (!strcmp(p, "h"))
        unit = 3600 * 1000;
    else if (!strcmp(p, "d"))
        unit = 86400 * 1000;
    else
        return RK_ERR;
    if (n < 1 || n > RK_WINDOW_MS_MAX / unit)
        return RK_ERR;
    *ms = n * unit;
    return RK_OK;
}

/*
 * Parses one key atom ("ip", "header:X-Tenant", "jwt:sub", ...) of len bytes.
 * NULL on success, else why it is refused.
 */
static const char *parse_key_atom(const char *s, size_t len, rk_key_atom_t *atom) {
    static const struct {
        const char *name;
        rk_key_source_t source;
    } plain[] = {{"ip", RK_KEY_IP},
                 {"user", RK_KEY_USER},
                 {"api_key", RK_KEY_API_KEY},
                 {"route", RK_KEY_ROUTE},
                 {"global", RK_KEY_GLOBAL}};
    memset(atom, 0, sizeof *atom);
    for (size_t i = 0; i < RK_ARRAY_LEN(plain); i++) {
        if (strlen(plain[i].name) == len && !memcmp(s, plain[i].name, len)) {
            atom->source = plain[i].source;
            return NULL;
        }
    }
    if (len > 7 && !memcmp(s, "header:", 7)) {
        if (!header_name_valid(s + 7, len - 7))
            return "header:<Name> needs a header name of 1 to 64 token characters";
        atom->source = RK_KEY_HEADER;
        memcpy(atom->name, s + 7, len - 7);
        return NULL;
    }
    if (len > 4 && !memcmp(s, "jwt:", 4)) {
        if (!claim_valid(s + 4, len - 4))
            return "jwt:<claim> needs a claim name of 1 to 64 letters, digits, '_', '-' or '.'";
        atom->source = RK_KEY_JWT;
        memcpy(atom->name, s + 4, len - 4);
        return NULL;
    }
    return "must be ip, user, api_key, route, global, header:<Name> or jwt:<claim>, "
           "or a tuple of them joined by '+'";
}

/* Parses one part of the key chain ("ip", "ip+route"); NULL or why it is refused. */
static const char *parse_key_part(const char *s, rk_key_part_t *part) {
    memset(part, 0, sizeof *part);
    const char *p = s;
    for (;;) {
        const char *plus = strchr(p, '+');
        size_t len = plus ? (size_t)(plus - p) : strlen(p);
        if (part->natoms == RK_KEY_TUPLE_MAX)
            return "a tuple has at most 4 parts";
        const char *why = parse_key_atom(p, len, &part->atoms[part->natoms]);
        if (why)
            return why;
        part->natoms++;
        if (!plus)
            return NULL;
        p = plus + 1;
    }
}

/* ---- validation of each part ----------------------------------------------------- */

static const char *const mode_names[] = {"enforce", "shadow", "off"};
static const char *const fail_mode_names[] = {"open", "closed", "local"};

static int name_index(const char *const *names, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -1;
}

/* The largest limit an algorithm accepts. */
static int64_t limit_max(int algorithm) {
    if (algorithm == RK_ALG_SLIDING_LOG)
        return RK_SLIDING_LOG_LIMIT_MAX;
    if (algorithm == RK_ALG_CONCURRENCY)
        return RK_CONCURRENCY_LIMIT_MAX;
    return RK_LIMIT_MAX;
}

/*
 * Reads a window from "window_ms" (integer) or "window" (duration string or
 * integer ms) of obj; prefix names the fields in errors ("" or "plans.x.").
 * Returns 1 when read, 0 when neither is present, -1 on an error.
 */
static int read_window(const cJSON *obj, const char *prefix, cJSON *errors, int64_t *out) {
    const cJSON *wms = cJSON_GetObjectItemCaseSensitive(obj, "window_ms");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(obj, "window");
    char field[128];
    if (wms && w) {
        snprintf(field, sizeof field, "%swindow", prefix);
        rk_rule_error(errors, field, "give either window or window_ms, not both");
        return -1;
    }
    if (wms) {
        snprintf(field, sizeof field, "%swindow_ms", prefix);
        if (!read_int(wms, 1, RK_WINDOW_MS_MAX, out)) {
            rk_rule_error(errors, field, "must be an integer between 1 and %lld (ms)",
                          (long long)RK_WINDOW_MS_MAX);
            return -1;
        }
        return 1;
    }
    if (w) {
        snprintf(field, sizeof field, "%swindow", prefix);
        if (cJSON_IsNumber(w) ? !read_int(w, 1, RK_WINDOW_MS_MAX, out)
                              : !cJSON_IsString(w) || rk_duration_parse(w->valuestring, out)) {
            rk_rule_error(errors, field,
                          "must be a duration such as \"500ms\", \"30s\", \"1m\", \"1h\", "
                          "\"1d\" (whole numbers, at most 7d) or an integer of ms");
            return -1;
        }
        return 1;
    }
    return 0;
}

static int by_host(const void *a, const void *b) {
    return strcmp(a, b);
}

/* Adds a header to match, named in lower case: requests' header names are matched so. */
static void add_header(cJSON *headers, const char *name, const char *value) {
    cJSON *added = cJSON_AddStringToObject(headers, name, value);
    if (added)
        rk_ascii_lower(added->string, strlen(added->string));
}

/* Validates "match" into a canonical object added to canon. */
static void check_match(const cJSON *match, cJSON *canon, cJSON *errors) {
    cJSON *out = cJSON_AddObjectToObject(canon, "match");
    cJSON *methods = cJSON_AddArrayToObject(out, "methods");
    cJSON_AddNullToObject(out, "path"); /* replaced in place when given */
    cJSON *hosts = cJSON_AddArrayToObject(out, "hosts");
    cJSON *headers = cJSON_AddObjectToObject(out, "headers");
    if (!match || cJSON_IsNull(match))
        return;
    if (!cJSON_IsObject(match)) {
        rk_rule_error(errors, "match", "must be an object");
        return;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, match) {
        const char *k = item->string;
        if (strcmp(k, "methods") && strcmp(k, "path") && strcmp(k, "hosts") && strcmp(k, "headers"))
            rk_rule_error(errors, "match",
                          "unknown field \"%.64s\" (methods, path, hosts, headers)", k);
    }

    const cJSON *m = cJSON_GetObjectItemCaseSensitive(match, "methods");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) > RK_RULE_METHODS_MAX) {
            rk_rule_error(errors, "match.methods", "must be an array of at most %d HTTP methods",
                          RK_RULE_METHODS_MAX);
        } else {
            uint32_t seen = 0;
            int i = 0;
            cJSON_ArrayForEach(item, m) {
                char field[48];
                snprintf(field, sizeof field, "match.methods[%d]", i++);
                uint32_t bit = cJSON_IsString(item) ? rk_method_bit(item->valuestring) : 0;
                if (bit == 0 || bit == RK_METHOD_OTHER) {
                    rk_rule_error(errors, field,
                                  "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, "
                                  "CONNECT, TRACE");
                    continue;
                }
                seen |= bit; /* a repeated method says nothing new */
            }
            /* In one order, whatever the request's: a reordered list is no change. */
            for (size_t j = 0; rk_method_name(j); j++)
                if (seen & rk_method_bit(rk_method_name(j)))
                    cJSON_AddItemToArray(methods, cJSON_CreateString(rk_method_name(j)));
        }
    }

    const cJSON *p = cJSON_GetObjectItemCaseSensitive(match, "path");
    if (p && !cJSON_IsNull(p) && !(cJSON_IsString(p) && p->valuestring[0] == '\0')) {
        const char *why = "must be a string";
        if (cJSON_IsString(p) && rk_path_pattern_valid(p->valuestring, &why))
            cJSON_ReplaceItemInObjectCaseSensitive(out, "path", cJSON_CreateString(p->valuestring));
        else
            rk_rule_error(errors, "match.path", "%s", why);
    }

    const cJSON *h = cJSON_GetObjectItemCaseSensitive(match, "hosts");
    if (h && !cJSON_IsNull(h)) {
        if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) > RK_RULE_HOSTS_MAX) {
            rk_rule_error(errors, "match.hosts", "must be an array of at most %d host names",
                          RK_RULE_HOSTS_MAX);
        } else {
            char names[RK_RULE_HOSTS_MAX][RK_RULE_HOST_LEN_MAX + 1];
            size_t n = 0;
            int i = 0;
            cJSON_ArrayForEach(item, h) {
                char field[48];
                snprintf(field, sizeof field, "match.hosts[%d]", i++);
                if (!cJSON_IsString(item) || !host_valid(item->valuestring)) {
                    rk_rule_error(errors, field,
                                  "must be a host name (letters, digits, '-', '.'; \"*.\" in "
                                  "front for subdomains; no port)");
                    continue;
                }
                snprintf(names[n], sizeof names[n], "%s", item->valuestring); /* valid: fits */
                rk_ascii_lower(names[n], strlen(names[n]));
                n++;
            }
            /* Sorted, once each: a reordered or repeated host is no change. */
            qsort(names, n, sizeof *names, by_host);
            for (size_t j = 0; j < n; j++)
                if (j == 0 || strcmp(names[j], names[j - 1]))
                    cJSON_AddItemToArray(hosts, cJSON_CreateString(names[j]));
        }
    }

    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(match, "headers");
    if (hd && !cJSON_IsNull(hd)) {
        if (!cJSON_IsObject(hd) || cJSON_GetArraySize(hd) > RK_RULE_HEADERS_MAX) {
            rk_rule_error(errors, "match.headers",
                          "must be an object of at most %d header names to values",
                          RK_RULE_HEADERS_MAX);
        } else {
            cJSON_ArrayForEach(item, hd) {
                char field[96];
                snprintf(field, sizeof field, "match.headers.%.64s", item->string);
                if (!header_name_valid(item->string, strlen(item->string)))
                    rk_rule_error(errors, field, "is not a valid header name");
                else if (!cJSON_IsString(item) ||
                         strlen(item->valuestring) > RK_RULE_HEADER_VALUE_MAX)
                    rk_rule_error(errors, field, "must be a string of at most %d bytes",
                                  RK_RULE_HEADER_VALUE_MAX);
                else if (cJSON_GetObjectItem(headers, item->string))
                    rk_rule_error(errors, field, "is given twice (header names ignore case)");
                else
                    add_header(headers, item->string, item->valuestring);
            }
        }
    }
}

/* A key part as stored, its header names in lower case ("header:X-Tenant+ip" is
 * "header:x-tenant+ip"), as checks name the keys they count. */
static cJSON *canonical_key_part(const char *part) {
    cJSON *out = cJSON_CreateString(part);
    for (char *atom = out ? out->valuestring : NULL; atom;) {
        if (!strncmp(atom, "header:", 7))
            rk_ascii_lower(atom + 7, strcspn(atom + 7, "+"));
        char *plus = strchr(atom, '+');
        atom = plus ? plus + 1 : NULL;
    }
    return out;
}

/* Validates "key" (an array, or one string as a shorthand) into canon. */
static void check_key(const cJSON *key, cJSON *canon, cJSON *errors) {
    cJSON *out = cJSON_AddArrayToObject(canon, "key");
    if (!key || cJSON_IsNull(key)) {
        cJSON_AddItemToArray(out, cJSON_CreateString("ip"));
        return;
    }
    rk_key_part_t part;
    if (cJSON_IsString(key)) {
        const char *why = parse_key_part(key->valuestring, &part);
        if (why)
            rk_rule_error(errors, "key", "%s", why);
        else
            cJSON_AddItemToArray(out, canonical_key_part(key->valuestring));
        return;
    }
    int n = cJSON_IsArray(key) ? cJSON_GetArraySize(key) : -1;
    if (n < 1 || n > RK_KEY_CHAIN_MAX) {
        rk_rule_error(errors, "key", "must be an array of 1 to %d key parts such as \"ip\"",
                      RK_KEY_CHAIN_MAX);
        return;
    }
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, key) {
        char field[32];
        snprintf(field, sizeof field, "key[%d]", i++);
        const char *why =
            cJSON_IsString(item) ? parse_key_part(item->valuestring, &part) : "must be a string";
        if (why)
            rk_rule_error(errors, field, "%s", why);
        else
            cJSON_AddItemToArray(out, canonical_key_part(item->valuestring));
    }
}

/* ---- burst --------------------------------------------------------------------------- */

#define BURST_ALGORITHMS_ONLY "applies to token_bucket, gcra and leaky_bucket only"

/* The algorithms a burst means something to (DESIGN §3); RK_ALG_COUNT (an
 * unknown algorithm, refused on its own) too, so as not to add a second error. */
static bool uses_burst(rk_algorithm_t alg) {
    return alg == RK_ALG_TOKEN_BUCKET || alg == RK_ALG_GCRA || alg == RK_ALG_LEAKY_BUCKET ||
           alg == RK_ALG_COUNT;
}

/* Validates the rule's "burst" (item, may be NULL) into canon. */
static void check_burst(const cJSON *item, rk_algorithm_t alg, cJSON *canon, cJSON *errors) {
    int64_t v;
    if (!item || cJSON_IsNull(item))
        cJSON_AddNullToObject(canon, "burst");
    else if (!uses_burst(alg))
        rk_rule_error(errors, "burst", BURST_ALGORITHMS_ONLY);
    else if (!read_int(item, 1, RK_BURST_MAX, &v))
        rk_rule_error(errors, "burst", "must be an integer between 1 and %lld, or null",
                      (long long)RK_BURST_MAX);
    else
        cJSON_AddNumberToObject(canon, "burst", (double)v);
}

void rk_rule_drop_ignored_burst(cJSON *doc) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "algorithm");
    rk_algorithm_t alg;
    if (!cJSON_IsString(name) || rk_algorithm_parse(name->valuestring, &alg) != RK_OK ||
        uses_burst(alg))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "burst");
    cJSON *plan;
    cJSON_ArrayForEach(plan, cJSON_GetObjectItemCaseSensitive(doc, "plans")) {
        if (cJSON_IsObject(plan))
            cJSON_DeleteItemFromObjectCaseSensitive(plan, "burst");
    }
}

/* Validates "plans" into canon; lim_max is the largest limit of alg. */
static void check_plans(const cJSON *plans, rk_algorithm_t alg, int64_t lim_max, cJSON *canon,
                        cJSON *errors) {
    cJSON *out = cJSON_AddObjectToObject(canon, "plans");
    if (!plans || cJSON_IsNull(plans))
        return;
    if (!cJSON_IsObject(plans) || cJSON_GetArraySize(plans) > RK_PLANS_MAX) {
        rk_rule_error(errors, "plans", "must be an object of at most %d plans", RK_PLANS_MAX);
        return;
    }
    const cJSON *plan;
    cJSON_ArrayForEach(plan, plans) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "plans.%.64s.", plan->string);
        char field[128];
        snprintf(field, sizeof field, "plans.%.64s", plan->string);
        if (!plan_name_valid(plan->string)) {
            rk_rule_error(errors, field,
                          "a plan name has 1 to 64 letters, digits, '_', '-' or '.'");
            continue;
        }
        if (cJSON_GetObjectItemCaseSensitive(out, plan->string)) {
            rk_rule_error(errors, field, "appears twice");
            continue;
        }
        if (!cJSON_IsObject(plan)) {
            rk_rule_error(errors, field, "must be an object of limit, burst, window_ms");
            continue;
        }
        cJSON *o = cJSON_AddObjectToObject(out, plan->string);
        const cJSON *item;
        cJSON_ArrayForEach(item, plan) {
            if (strcmp(item->string, "limit") && strcmp(item->string, "burst") &&
                strcmp(item->string, "window_ms") && strcmp(item->string, "window"))
                rk_rule_error(errors, field,
                              "unknown field \"%.64s\" (a plan overrides limit, burst, "
                              "window_ms)",
                              item->string);
        }
        int64_t v;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(plan, "limit");
        if (l) {
            snprintf(field, sizeof field, "%slimit", prefix);
            if (read_int(l, 1, lim_max, &v))
                cJSON_AddNumberToObject(o, "limit", (double)v);
            else
                rk_rule_error(errors, field, "must be an integer between 1 and %lld",
                              (long long)lim_max);
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(plan, "burst");
        if (b && !cJSON_IsNull(b)) {
            snprintf(field, sizeof field, "%sburst", prefix);
            if (!uses_burst(alg))
                rk_rule_error(errors, field, BURST_ALGORITHMS_ONLY);
            else if (read_int(b, 1, RK_BURST_MAX, &v))
                cJSON_AddNumberToObject(o, "burst", (double)v);
            else
                rk_rule_error(errors, field, "must be an integer between 1 and %lld",
                              (long long)RK_BURST_MAX);
        }
        if (read_window(plan, prefix, errors, &v) == 1)
            cJSON_AddNumberToObject(o, "window_ms", (double)v);
    }
}

/* ---- the whole rule ---------------------------------------------------------------- */

static const char *const known_fields[] = {
    "id",        "description", "match",   "key",        "algorithm", "limit",
    "window_ms", "window",      "burst",   "shape",      "mode",      "priority",
    "fail_mode", "plans",       "version", "created_at", "updated_at"};

/* Refuses unknown and repeated top-level fields. */
static void check_fields(const cJSON *doc, cJSON *errors) {
    int seen[RK_ARRAY_LEN(known_fields)] = {0};
    const cJSON *item;
    cJSON_ArrayForEach(item, doc) {
        int k = name_index(known_fields, RK_ARRAY_LEN(known_fields), item->string);
        if (k < 0)
            rk_rule_error(errors, item->string, "unknown field");
        else if (seen[k]++ == 1)
            rk_rule_error(errors, item->string, "appears twice");
    }
}

cJSON *rk_rule_canonical(const cJSON *doc, cJSON *errors) {
    if (!cJSON_IsObject(doc)) {
        rk_rule_error(errors, "", "a rule must be a JSON object");
        return NULL;
    }
    int before = cJSON_GetArraySize(errors);
    check_fields(doc, errors);
    cJSON *canon = cJSON_CreateObject();
    const cJSON *item;
    int64_t v;

    item = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (!item)
        rk_rule_error(errors, "id", "is required");
    else if (!cJSON_IsString(item) || !rk_rule_id_valid(item->valuestring))
        rk_rule_error(errors, "id",
                      "must be 1 to 64 characters: lower-case letters, digits, '_' or '-', "
                      "starting with a letter or digit");
    else if (!strcmp(item->valuestring, "export") || !strcmp(item->valuestring, "import"))
        rk_rule_error(errors, "id", "\"%s\" is reserved", item->valuestring);
    else
        cJSON_AddStringToObject(canon, "id", item->valuestring);

    item = cJSON_GetObjectItemCaseSensitive(doc, "description");
    if (!item || cJSON_IsNull(item))
        cJSON_AddStringToObject(canon, "description", "");
    else if (!cJSON_IsString(item) || strlen(item->valuestring) > RK_RULE_DESCRIPTION_MAX)
        rk_rule_error(errors, "description", "must be a string of at most %d bytes",
                      RK_RULE_DESCRIPTION_MAX);
    else
        cJSON_AddStringToObject(canon, "description", item->valuestring);

    check_match(cJSON_GetObjectItemCaseSensitive(doc, "match"), canon, errors);
    check_key(cJSON_GetObjectItemCaseSensitive(doc, "key"), canon, errors);

    rk_algorithm_t alg = RK_ALG_COUNT; /* unknown */
    item = cJSON_GetObjectItemCaseSensitive(doc, "algorithm");
    if (!item)
        rk_rule_error(errors, "algorithm", "is required");
    else if (!cJSON_IsString(item) || rk_algorithm_parse(item->valuestring, &alg) != RK_OK)
        rk_rule_error(errors, "algorithm",
                      "must be one of fixed_window, sliding_window, sliding_log, token_bucket, "
                      "gcra, leaky_bucket, concurrency");
    else
        cJSON_AddStringToObject(canon, "algorithm", rk_algorithm_name(alg));

    int64_t lim_max = limit_max((int)alg);
    item = cJSON_GetObjectItemCaseSensitive(doc, "limit");
    if (!item)
        rk_rule_error(errors, "limit", "is required");
    else if (!read_int(item, 1, lim_max, &v))
        rk_rule_error(errors, "limit", "must be an integer between 1 and %lld%s",
                      (long long)lim_max,
                      alg == RK_ALG_SLIDING_LOG   ? " for sliding_log"
                      : alg == RK_ALG_CONCURRENCY ? " for concurrency"
                                                  : "");
    else
        cJSON_AddNumberToObject(canon, "limit", (double)v);

    int w = read_window(doc, "", errors, &v);
    if (w == 1)
        cJSON_AddNumberToObject(canon, "window_ms", (double)v);
    else if (w == 0)
        rk_rule_error(errors, "window_ms", "is required (or window, as \"1m\")");

    check_burst(cJSON_GetObjectItemCaseSensitive(doc, "burst"), alg, canon, errors);

    item = cJSON_GetObjectItemCaseSensitive(doc, "shape");
    if (item && !cJSON_IsNull(item) && !cJSON_IsBool(item))
        rk_rule_error(errors, "shape", "must be true or false");
    else if (cJSON_IsTrue(item) && alg != RK_ALG_LEAKY_BUCKET && alg != RK_ALG_COUNT)
        rk_rule_error(errors, "shape", "applies to leaky_bucket only");
    else if (alg == RK_ALG_LEAKY_BUCKET)
        cJSON_AddBoolToObject(canon, "shape", cJSON_IsTrue(item));

    item = cJSON_GetObjectItemCaseSensitive(doc, "mode");
    if (!item || cJSON_IsNull(item))
        cJSON_AddStringToObject(canon, "mode", "enforce");
    else if (!cJSON_IsString(item) ||
             name_index(mode_names, RK_ARRAY_LEN(mode_names), item->valuestring) < 0)
        rk_rule_error(errors, "mode", "must be enforce, shadow or off");
    else
        cJSON_AddStringToObject(canon, "mode", item->valuestring);

    item = cJSON_GetObjectItemCaseSensitive(doc, "priority");
    if (!item || cJSON_IsNull(item))
        cJSON_AddNumberToObject(canon, "priority", 100);
    else if (!read_int(item, RK_RULE_PRIORITY_MIN, RK_RULE_PRIORITY_MAX, &v))
        rk_rule_error(errors, "priority", "must be an integer between %d and %d",
                      RK_RULE_PRIORITY_MIN, RK_RULE_PRIORITY_MAX);
    else
        cJSON_AddNumberToObject(canon, "priority", (double)v);

    item = cJSON_GetObjectItemCaseSensitive(doc, "fail_mode");
    if (!item || cJSON_IsNull(item))
        cJSON_AddNullToObject(canon, "fail_mode");
    else if (!cJSON_IsString(item) ||
             name_index(fail_mode_names, RK_ARRAY_LEN(fail_mode_names), item->valuestring) < 0)
        rk_rule_error(errors, "fail_mode",
                      "must be null (the server's RATEKIT_FAIL_MODE), open, closed or local");
    else
        cJSON_AddStringToObject(canon, "fail_mode", item->valuestring);

    check_plans(cJSON_GetObjectItemCaseSensitive(doc, "plans"), alg, lim_max, canon, errors);

    if (cJSON_GetArraySize(errors) != before) {
        cJSON_Delete(canon);
        return NULL;
    }
    return canon;
}

/* ---- compilation -------------------------------------------------------------------- */

static int64_t number_or(const cJSON *obj, const char *name, int64_t dflt) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(item) ? (int64_t)item->valuedouble : dflt;
}

static const char *string_of(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static rk_status_t compile_match(const cJSON *match, rk_match_t *m) {
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(match, "methods")) {
        if (cJSON_IsString(item))
            m->methods |= rk_method_bit(item->valuestring);
    }
    const char *path = string_of(match, "path");
    if (path && rk_match_set_path(m, path) != RK_OK)
        return RK_ERR;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(match, "hosts")) {
        if (cJSON_IsString(item) && rk_match_add_host(m, item->valuestring) != RK_OK)
            return RK_ERR;
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(match, "headers")) {
        if (cJSON_IsString(item) &&
            rk_match_add_header(m, item->string, item->valuestring) != RK_OK)
            return RK_ERR;
    }
    return RK_OK;
}

rk_status_t rk_rule_compile(const cJSON *canon, int64_t version, rk_rule_t *out) {
    memset(out, 0, sizeof *out);
    const char *id = string_of(canon, "id");
    const char *alg = string_of(canon, "algorithm");
    /* The id is checked again: a row written into the database by hand must
     * not break an answer, which writes ids without escaping them. */
    if (!id || !rk_rule_id_valid(id) || !alg ||
        rk_algorithm_parse(alg, &out->limit.algorithm) != RK_OK)
        return RK_ERR;
    snprintf(out->id, sizeof out->id, "%s", id);
    out->version = version;
    out->limit.limit = number_or(canon, "limit", 0);
    out->limit.window_ms = number_or(canon, "window_ms", 0);
    out->limit.burst = number_or(canon, "burst", out->limit.limit);
    out->limit.shape = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(canon, "shape"));
    if (out->limit.limit < 1 || out->limit.window_ms < 1)
        return RK_ERR;
    const char *mode = string_of(canon, "mode");
    int k = mode ? name_index(mode_names, RK_ARRAY_LEN(mode_names), mode) : 0;
    out->mode = k < 0 ? RK_MODE_ENFORCE : (rk_mode_t)k;
    out->priority = (int)number_or(canon, "priority", 100);
    const char *fail = string_of(canon, "fail_mode");
    k = fail ? name_index(fail_mode_names, RK_ARRAY_LEN(fail_mode_names), fail) : -1;
    out->fail_mode = k < 0 ? RK_FAIL_DEFAULT : (rk_fail_mode_t)k;

    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(canon, "key")) {
        if (out->nkey == RK_KEY_CHAIN_MAX || !cJSON_IsString(item) ||
            parse_key_part(item->valuestring, &out->key[out->nkey]) != NULL)
            goto fail;
        out->nkey++;
    }
    if (out->nkey == 0) {
        out->key[0].atoms[0].source = RK_KEY_IP;
        out->key[0].natoms = 1;
        out->nkey = 1;
    }
    if (compile_match(cJSON_GetObjectItemCaseSensitive(canon, "match"), &out->match) != RK_OK)
        goto fail;

    const cJSON *plans = cJSON_GetObjectItemCaseSensitive(canon, "plans");
    int nplans = cJSON_GetArraySize(plans);
    if (nplans > 0) {
        out->plans = calloc((size_t)nplans, sizeof *out->plans);
        if (!out->plans)
            goto fail;
        bool burst_follows = !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(canon, "burst"));
        cJSON_ArrayForEach(item, plans) {
            rk_plan_t *p = &out->plans[out->nplans++];
            snprintf(p->name, sizeof p->name, "%s", item->string);
            p->limit = out->limit;
            p->limit.limit = number_or(item, "limit", out->limit.limit);
            p->limit.window_ms = number_or(item, "window_ms", out->limit.window_ms);
            /* a burst left to its default follows the plan's limit */
            p->limit.burst =
                number_or(item, "burst", burst_follows ? p->limit.limit : out->limit.burst);
        }
    }
    return RK_OK;
fail:
    rk_rule_free(out);
    return RK_ERR;
}

void rk_rule_free(rk_rule_t *rule) {
    rk_match_free(&rule->match);
    free(rule->plans);
    rule->plans = NULL;
    rule->nplans = 0;
}

const rk_plan_t *rk_rule_plan(const rk_rule_t *rule, const char *plan) {
    if (!rule || !plan)
        return NULL;
    for (size_t i = 0; i < rule->nplans; i++)
        if (!strcmp(rule->plans[i].name, plan))
            return &rule->plans[i];
    return NULL;
}

static const char *const own_members[] = {"version", "created_at", "updated_at"};

bool rk_rule_own_member(const char *name) {
    for (size_t i = 0; i < RK_ARRAY_LEN(own_members); i++)
        if (!strcmp(name, own_members[i]))
            return true;
    return false;
}

void rk_rule_etag(const cJSON *rule, char out[RK_RULE_ETAG_SIZE]) {
    cJSON *content = cJSON_Duplicate(rule, true);
    for (size_t i = 0; content && i < RK_ARRAY_LEN(own_members); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(content, own_members[i]);
    char *text = content ? cJSON_PrintUnformatted(content) : NULL;
    cJSON_Delete(content);
    unsigned char digest[SHA256_DIGEST_LENGTH] = {0}; /* out of memory: a tag no rule has */
    if (text)
        SHA256((const unsigned char *)text, strlen(text), digest);
    cJSON_free(text);
    out[0] = '"';
    rk_hex(digest, 8, out + 1);
    out[17] = '"';
    out[18] = '\0';
}
