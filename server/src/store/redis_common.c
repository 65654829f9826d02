/*
 * redis_common.c — see redis_common.h.
 */
#include "redis_common.h"
#include "reply_arena.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log.h"

extern const char *const rk_lua_scripts[];
extern const size_t rk_lua_scripts_len;

#define DEFAULT_PREFIX "ratekit"
#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define DEFAULT_TIMEOUT_MS 250

void rk_redis_set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static struct timeval ms_to_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/*
 * The batch script. Each algorithm's script becomes a function of (KEYS,
 * ARGV), made once per call when the call first needs it (making all seven
 * costs each call about 2 us) and called for each request in turn: what the
 * script does before it reads its key (the constants and helpers its
 * decision uses) is done once per call, as is the reading of Redis's clock
 * (every request of the call with now_ms -1 gets the same now). The
 * requests of a call mostly share their arguments (one rule, cost 1): each
 * set of them is sent and read once (ratekitd finds a request's among the
 * last sets it made), and the requests name theirs, or none does when all
 * share one or each has its own (9 arguments a request cost Redis about
 * 0.6-0.8 us of its 5.2 us a token-bucket decision). A request whose script
 * fails (a key of another type, a Redis refusing writes) gets an error in
 * its place, and the others their decisions, as separate calls would
 * answer. A script without the split line is made whole into its function.
 */
static const char BATCH_SPLIT[] = "\nlocal key = KEYS[1]\n";

static const char BATCH_HEAD[] =
    "-- ratekit batch (built by ratekitd from lua/*.lua): the decisions of many\n"
    "-- requests in one call. KEYS[i]: request i's state key. ARGV[1]: the number\n"
    "-- of sets of arguments, S; ARGV[9s-7]: set s's algorithm (0..6, the order of\n"
    "-- lua/README.md's table), ARGV[9s-6..9s+1]: that algorithm's ARGV; then,\n"
    "-- when 1 < S < #KEYS, ARGV[9S+1+i]: request i's set (S = #KEYS: set i).\n"
    "-- Reply: each request's reply, or an error.\n"
    "local make, decide = {}, {}\n";

static const char BATCH_TAIL[] =
    "-- Set s's ARGV into args (its numbers converted) and its function (false\n"
    "-- for an unknown algorithm). A set is read when a request first needs it.\n"
    "local now\n"
    "local function read_set(s, args)\n"
    "    local b = 9 * s - 8\n"
    "    for j = 1, 4 do\n"
    "        local v = ARGV[b + 1 + j]\n"
    "        args[j] = tonumber(v) or v\n"
    "    end\n"
    "    args[5] = tonumber(ARGV[b + 6]) or -1\n"
    "    if args[5] < 0 then\n"
    "        if not now then\n"
    "            local t = redis.call('TIME')\n"
    "            now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "        end\n"
    "        args[5] = now\n"
    "    end\n"
    "    for j = 6, 8 do\n"
    "        args[j] = ARGV[b + 1 + j]\n"
    "    end\n"
    "    local a = tonumber(ARGV[b + 1])\n"
    "    local fn = decide[a]\n"
    "    if not fn and make[a] then\n"
    "        fn = make[a]()\n"
    "        decide[a] = fn\n"
    "    end\n"
    "    return fn or false\n"
    "end\n"
    "\n"
    "-- Sets shared by requests are kept; a request with a set of its own (as\n"
    "-- many sets as keys) reads it into one table used again.\n"
    "local out, keys, fns, argsets, own_args = {}, {}, {}, {}, {}\n"
    "local nsets, n = tonumber(ARGV[1]), #KEYS\n"
    "local named, own = nsets > 1 and nsets < n, nsets > 1 and nsets == n\n"
    "for i = 1, n do\n"
    "    local s, fn, args = 1, nil, nil\n"
    "    if named then\n"
    "        s = tonumber(ARGV[9 * nsets + 1 + i])\n"
    "    end\n"
    "    if own then\n"
    "        args = own_args\n"
    "        fn = read_set(i, args)\n"
    "    else\n"
    "        fn, args = fns[s], argsets[s]\n"
    "        if fn == nil then\n"
    "            args = {}\n"
    "            fn = read_set(s, args)\n"
    "            fns[s], argsets[s] = fn, args\n"
    "        end\n"
    "    end\n"
    "    keys[1] = KEYS[i]\n"
    "    local ok, r = false, 'ERR unknown algorithm'\n"
    "    if fn then\n"
    "        ok, r = pcall(fn, keys, args)\n"
    "    end\n"
    "    if ok then\n"
    "        out[i] = r\n"
    "    elseif type(r) == 'table' and r.err then\n"
    "        out[i] = r\n"
    "    else\n"
    "        out[i] = {err = 'ERR ' .. tostring(r)}\n"
    "    end\n"
    "end\n"
    "return out\n";

/* Appends len bytes at *at (room counted by batch_build). */
static void put(char **at, const char *bytes, size_t len) {
    memcpy(*at, bytes, len);
    *at += len;
}

/* Builds the batch script from the algorithms' scripts; NULL when out of memory. */
static char *batch_build(const rk_redis_common_t *c) {
    static const char open_fn[] = "] = function()\n", decide_fn[] = "return function(KEYS, ARGV)\n",
                      close_fn[] = "\nend\nend\n";
    size_t cap = sizeof BATCH_HEAD + sizeof BATCH_TAIL;
    for (int a = 0; a < RK_ALG_COUNT; a++)
        cap += c->script_len[a] + sizeof open_fn + sizeof decide_fn + sizeof close_fn + 16;
    char *src = malloc(cap), *at = src;
    if (!src)
        return NULL;
    put(&at, BATCH_HEAD, sizeof BATCH_HEAD - 1);
    for (int a = 0; a < RK_ALG_COUNT; a++) {
        const char *script = c->script[a], *split = strstr(script, BATCH_SPLIT);
        size_t head = split ? (size_t)(split - script) + 1 : 0; /* through the split's "\n" */
        at += sprintf(at, "make[%d", a);
        put(&at, open_fn, sizeof open_fn - 1);
        put(&at, script, head);
        put(&at, decide_fn, sizeof decide_fn - 1);
        put(&at, script + head, c->script_len[a] - head);
        put(&at, close_fn, sizeof close_fn - 1);
    }
    put(&at, BATCH_TAIL, sizeof BATCH_TAIL);
    return src;
}

/* Sets c->sha[i] to the SHA1 of script i, as Redis names it. */
static void script_sha(rk_redis_common_t *c, int i) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)c->script[i], c->script_len[i], digest);
    rk_hex(digest, SHA_DIGEST_LENGTH, c->sha[i]);
}

void rk_redis_common_free(rk_redis_common_t *c) {
    free((char *)c->script[RK_REDIS_BATCH]);
    c->script[RK_REDIS_BATCH] = NULL;
}

/* A prefix is 1..64 bytes of letters, digits, '_', '-', '.' (no hash-tag braces). */
static bool valid_prefix(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > RK_REDIS_PREFIX_MAX)
        return false;
    for (; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

rk_status_t rk_redis_common_init(rk_redis_common_t *c, const char *what, const char *const *scripts,
                                 bool batch, const char *key_prefix, int64_t connect_timeout_ms,
                                 int64_t timeout_ms, char *err, size_t errlen) {
    if (!scripts) {
        if (rk_lua_scripts_len != RK_ALG_COUNT) {
            rk_redis_set_err(err, errlen, "%s: %zu Lua scripts embedded, %d expected", what,
                             rk_lua_scripts_len, (int)RK_ALG_COUNT);
            return RK_ERR;
        }
        scripts = rk_lua_scripts;
    }
    const char *prefix = key_prefix && key_prefix[0] ? key_prefix : DEFAULT_PREFIX;
    if (!valid_prefix(prefix)) {
        rk_redis_set_err(
            err, errlen,
            "%s: key prefix must be 1..%d letters, digits, '_', '-' or '.' (got \"%s\")", what,
            RK_REDIS_PREFIX_MAX, prefix);
        return RK_ERR;
    }
    if (connect_timeout_ms < 0 || timeout_ms < 0) {
        rk_redis_set_err(err, errlen, "%s: timeouts must not be negative", what);
        return RK_ERR;
    }
    memset(c, 0, sizeof *c);
    c->connect_tv =
        ms_to_timeval(connect_timeout_ms ? connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS);
    c->command_tv = ms_to_timeval(timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    c->prefix_len = strlen(prefix);
    memcpy(c->prefix, prefix, c->prefix_len + 1);
    for (int a = 0; a < RK_ALG_COUNT; a++) {
        c->script[a] = scripts[a] ? scripts[a] : "";
        c->script_len[a] = strlen(c->script[a]);
        script_sha(c, a);
    }
    c->scripts = RK_ALG_COUNT;
    if (!batch)
        return RK_OK;
    char *src = batch_build(c);
    if (!src) {
        rk_redis_set_err(err, errlen, "%s: out of memory", what);
        return RK_ERR;
    }
    c->script[RK_REDIS_BATCH] = src;
    c->script_len[RK_REDIS_BATCH] = strlen(src);
    script_sha(c, RK_REDIS_BATCH);
    c->scripts = RK_REDIS_SCRIPTS;
    return RK_OK;
}

void rk_redis_describe_failure(const redisContext *ctx, const redisReply *r, const char *what,
                               char *err, size_t errlen) {
    if (!r)
        rk_redis_set_err(err, errlen, "%s: %s", what, ctx->errstr[0] ? ctx->errstr : "no reply");
    else if (r->type == REDIS_REPLY_ERROR)
        rk_redis_set_err(err, errlen, "%s: %.*s", what, (int)r->len, r->str);
    else
        rk_redis_set_err(err, errlen, "%s: unexpected reply of type %d", what, r->type);
}

/* ================================================================ */
/* Keys and script calls                                             */
/* ================================================================ */

/* Whether a key can be built: a known algorithm, a bounded rule id and key. */
static bool key_fits(const char *rule_id, const char *key, rk_algorithm_t alg) {
    if (!rule_id || !key || (unsigned)alg >= RK_ALG_COUNT)
        return false;
    size_t rlen = strnlen(rule_id, RK_REDIS_RULE_ID_MAX + 1);
    return rlen > 0 && rlen <= RK_REDIS_RULE_ID_MAX &&
           strnlen(key, RK_STORE_KEY_MAX + 1) <= RK_STORE_KEY_MAX;
}

size_t rk_redis_build_key(const rk_redis_common_t *c, const char *rule_id, const char *key,
                          rk_algorithm_t alg, char *buf) {
    if (!key_fits(rule_id, key, alg))
        return 0;
    const char *alg_name = rk_algorithm_name(alg);
    size_t rlen = strlen(rule_id), klen = strlen(key), alen = strlen(alg_name), n = 0;
    memcpy(buf + n, c->prefix, c->prefix_len);
    n += c->prefix_len;
    memcpy(buf + n, ":{", 2);
    n += 2;
    memcpy(buf + n, rule_id, rlen);
    n += rlen;
    buf[n++] = ':';
    memcpy(buf + n, key, klen);
    n += klen;
    memcpy(buf + n, "}:", 2);
    n += 2;
    memcpy(buf + n, alg_name, alen);
    n += alen;
    buf[n] = '\0';
    return n;
}

bool rk_redis_req_valid(const rk_store_req_t *req, const char *lease_id) {
    return key_fits(req->rule_id, req->key, req->limit.algorithm) &&
           (!lease_id || strnlen(lease_id, RK_REDIS_LEASE_MAX + 1) <= RK_REDIS_LEASE_MAX);
}

bool rk_redis_reqs_valid(const rk_store_req_t *reqs, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!rk_redis_req_valid(&reqs[i], reqs[i].lease_id))
            return false;
    return true;
}

/* Appends the RESP bulk string "$<len>\r\n<bytes>\r\n" at `at` (room checked by the caller). */
static char *put_bulk(char *at, const char *bytes, size_t len) {
    *at++ = '$';
    at += rk_format_int((int64_t)len, at);
    memcpy(at, "\r\n", 2);
    memcpy(at + 2, bytes, len);
    memcpy(at + 2 + len, "\r\n", 2);
    return at + len + 4;
}

/*
 * The script's op of a request: decide_at (the reply adds the time the
 * script decided at, what a refund names) only where a refund may follow
 * and needs it: an element more in the reply costs every check.
 */
static const char *script_op(const rk_store_req_t *req, rk_redis_op_t op) {
    if (op == RK_REDIS_OP_RELEASE)
        return "release";
    if (req->refund)
        return "refund";
    if (req->refundable && rk_store_refund_needs_time(req->limit.algorithm))
        return "decide_at";
    return "decide";
}

void rk_redis_call_args(const rk_store_req_t *req, rk_redis_op_t op, const char *lease_id,
                        rk_redis_call_args_t *out) {
    const rk_limit_t *lim = &req->limit;
    const char *lease = op == RK_REDIS_OP_RELEASE ? lease_id : req->lease_id;
    if (!lease)
        lease = "";
    *out = (rk_redis_call_args_t){
        .num = {lim->limit, lim->window_ms, lim->burst, req->cost,
                req->now_ms < 0 ? -1 : req->now_ms},
        .lease = lease,
        .lease_len = strnlen(lease, RK_REDIS_LEASE_MAX), /* checked by rk_redis_req_valid() */
        .op = script_op(req, op),
        .algorithm = lim->algorithm,
        .shape = lim->shape};
}

bool rk_redis_call_args_equal(const rk_redis_call_args_t *a, const rk_redis_call_args_t *b) {
    return memcmp(a->num, b->num, sizeof a->num) == 0 && a->algorithm == b->algorithm &&
           a->shape == b->shape && a->lease_len == b->lease_len &&
           memcmp(a->lease, b->lease, a->lease_len) == 0 && strcmp(a->op, b->op) == 0;
}

/* A script call's 8 ARGV as strings, in argv/lens; the numbers are written into num. */
static void call_argv(const rk_redis_call_args_t *a, char num[RK_REDIS_CALL_NUMS][RK_INT_TEXT_MAX],
                      const char **argv, size_t *lens) {
    for (int i = 0; i < RK_REDIS_CALL_NUMS; i++) {
        lens[i] = rk_format_int(a->num[i], num[i]);
        argv[i] = num[i];
    }
    argv[5] = a->shape ? "1" : "0";
    lens[5] = 1;
    argv[6] = a->lease;
    lens[6] = a->lease_len;
    argv[7] = a->op;
    lens[7] = strlen(a->op);
}

/*
 * The RK_REDIS_EVAL_ARGC arguments of a script call, in argv/lens, from
 * argv[2] on (argv[0..1] are the caller's: EVALSHA and the SHA, or EVAL and
 * the source); the key is written into key (RK_REDIS_KEY_BUF bytes), the
 * numbers into num.
 */
static void eval_args(const rk_redis_common_t *c, const rk_store_req_t *req, rk_redis_op_t op,
                      const char *lease_id, char *key,
                      char num[RK_REDIS_CALL_NUMS][RK_INT_TEXT_MAX], const char **argv,
                      size_t *lens) {
    argv[2] = "1";
    lens[2] = 1;
    lens[3] = rk_redis_build_key(c, req->rule_id, req->key, req->limit.algorithm, key);
    argv[3] = key;
    rk_redis_call_args_t args;
    rk_redis_call_args(req, op, lease_id, &args);
    call_argv(&args, num, argv + 4, lens + 4);
}

/*
 * Written in RESP here, by hand: redisAppendCommandArgv() would format each
 * argument into a growing string on the heap, a cost paid on every check.
 */
size_t rk_redis_format_eval(const rk_redis_common_t *c, const rk_store_req_t *req, rk_redis_op_t op,
                            const char *lease_id, char *cmd) {
    char key[RK_REDIS_KEY_BUF], num[RK_REDIS_CALL_NUMS][RK_INT_TEXT_MAX];
    const char *argv[RK_REDIS_EVAL_ARGC] = {"EVALSHA", c->sha[req->limit.algorithm]};
    size_t lens[RK_REDIS_EVAL_ARGC] = {7, RK_REDIS_SHA_HEX};
    eval_args(c, req, op, lease_id, key, num, argv, lens);
    char *at = cmd;
    _Static_assert(RK_REDIS_EVAL_ARGC == 12, "the header below counts 12 arguments");
    memcpy(at, "*12\r\n", 5);
    at += 5;
    for (int i = 0; i < RK_REDIS_EVAL_ARGC; i++)
        at = put_bulk(at, argv[i], lens[i]);
    return (size_t)(at - cmd);
}

int rk_redis_append_eval(const rk_redis_common_t *c, redisContext *ctx, const rk_store_req_t *req,
                         rk_redis_op_t op, const char *lease_id) {
    char cmd[RK_REDIS_EVAL_MAX];
    return redisAppendFormattedCommand(ctx, cmd, rk_redis_format_eval(c, req, op, lease_id, cmd));
}

int rk_redis_append_eval_source(const rk_redis_common_t *c, redisContext *ctx,
                                const rk_store_req_t *req, rk_redis_op_t op, const char *lease_id) {
    char key[RK_REDIS_KEY_BUF], num[RK_REDIS_CALL_NUMS][RK_INT_TEXT_MAX];
    rk_algorithm_t alg = req->limit.algorithm;
    const char *argv[RK_REDIS_EVAL_ARGC] = {"EVAL", c->script[alg]};
    size_t lens[RK_REDIS_EVAL_ARGC] = {4, c->script_len[alg]};
    eval_args(c, req, op, lease_id, key, num, argv, lens);
    return redisAppendCommandArgv(ctx, RK_REDIS_EVAL_ARGC, argv, lens);
}

size_t rk_redis_format_batch_head(const rk_redis_common_t *c, size_t n, size_t sets, bool source,
                                  char *cmd) {
    size_t argc =
        3 + n + 1 + sets * RK_REDIS_BATCH_ARGS + (rk_redis_batch_names_sets(n, sets) ? n : 0);
    char *at = cmd;
    *at++ = '*';
    at += rk_format_int((int64_t)argc, at);
    memcpy(at, "\r\n", 2);
    at += 2;
    if (source) {
        at = put_bulk(at, "EVAL", 4);
        at = put_bulk(at, c->script[RK_REDIS_BATCH], c->script_len[RK_REDIS_BATCH]);
    } else {
        at = put_bulk(at, "EVALSHA", 7);
        at = put_bulk(at, c->sha[RK_REDIS_BATCH], RK_REDIS_SHA_HEX);
    }
    return (size_t)(at - cmd) + rk_redis_format_batch_int(n, at);
}

size_t rk_redis_format_batch_key(const rk_redis_common_t *c, const rk_store_req_t *req, char *cmd) {
    char key[RK_REDIS_KEY_BUF];
    size_t len = rk_redis_build_key(c, req->rule_id, req->key, req->limit.algorithm, key);
    return (size_t)(put_bulk(cmd, key, len) - cmd);
}

size_t rk_redis_format_batch_int(size_t v, char *cmd) {
    char text[RK_INT_TEXT_MAX];
    size_t len = rk_format_int((int64_t)v, text);
    return (size_t)(put_bulk(cmd, text, len) - cmd);
}

size_t rk_redis_format_batch_args(const rk_redis_call_args_t *args, char *cmd) {
    char num[RK_REDIS_CALL_NUMS][RK_INT_TEXT_MAX];
    const char *argv[RK_REDIS_BATCH_ARGS - 1];
    size_t lens[RK_REDIS_BATCH_ARGS - 1];
    call_argv(args, num, argv, lens);
    const char alg = (char)('0' + (int)args->algorithm);
    _Static_assert(RK_ALG_COUNT <= 10, "an algorithm is sent as one digit");
    char *at = put_bulk(cmd, &alg, 1);
    for (int i = 0; i < RK_REDIS_BATCH_ARGS - 1; i++)
        at = put_bulk(at, argv[i], lens[i]);
    return (size_t)(at - cmd);
}

/* Reads an integer element of an array reply. */
static bool reply_int(const redisReply *r, size_t i, int64_t *out) {
    if (i >= r->elements || !r->element[i] || r->element[i]->type != REDIS_REPLY_INTEGER)
        return false;
    *out = r->element[i]->integer;
    return true;
}

bool rk_redis_parse_reply(const redisReply *r, const rk_store_req_t *req, rk_redis_op_t op,
                          rk_decision_t *out, bool *released) {
    if (op == RK_REDIS_OP_RELEASE) {
        int64_t v;
        if (r->type == REDIS_REPLY_INTEGER)
            v = r->integer;
        else if (r->type != REDIS_REPLY_ARRAY || !reply_int(r, 0, &v))
            return false;
        *released = v != 0;
        return true;
    }
    if (RK_UNLIKELY(req->refund)) { /* nothing to read but that it ran */
        memset(out, 0, sizeof *out);
        out->allowed = true;
        out->limit = req->limit.limit;
        out->at_ms = req->now_ms;
        return r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_INTEGER;
    }
    int64_t allowed, remaining, reset_ms, retry_after_ms, delay_ms;
    if (r->type != REDIS_REPLY_ARRAY || !reply_int(r, 0, &allowed) ||
        !reply_int(r, 1, &remaining) || !reply_int(r, 2, &reset_ms) ||
        !reply_int(r, 3, &retry_after_ms) || !reply_int(r, 4, &delay_ms))
        return false;
    out->allowed = allowed != 0;
    out->limit = req->limit.limit;
    out->remaining = remaining;
    out->reset_ms = reset_ms;
    out->retry_after_ms = retry_after_ms;
    out->delay_ms = delay_ms;
    if (!reply_int(r, 5, &out->at_ms)) /* the script's now: what a refund names */
        out->at_ms = -1;
    return true;
}

bool rk_redis_is_error(const redisReply *r, const char *prefix) {
    size_t n = strlen(prefix);
    return r && r->type == REDIS_REPLY_ERROR && r->len >= n && memcmp(r->str, prefix, n) == 0 &&
           (r->len == n || r->str[n] == ' ');
}

int rk_redis_append_auth(redisContext *ctx, const char *user, const char *password) {
    const char *argv[3] = {"AUTH", user, password};
    size_t lens[3] = {4, strlen(user), strlen(password)};
    if (!user[0]) {
        argv[1] = password;
        lens[1] = lens[2];
    }
    return redisAppendCommandArgv(ctx, user[0] ? 3 : 2, argv, lens);
}

rk_status_t rk_redis_auth(redisContext *ctx, bool arena, const char *user, const char *password,
                          char *err, size_t errlen) {
    redisReply *r = NULL;
    if (rk_redis_append_auth(ctx, user, password) != REDIS_OK ||
        redisGetReply(ctx, (void **)&r) != REDIS_OK)
        r = NULL;
    rk_status_t st = r && r->type == REDIS_REPLY_STATUS ? RK_OK : RK_ERR;
    if (st != RK_OK)
        rk_redis_describe_failure(ctx, r, "AUTH", err, errlen);
    if (r && arena)
        rk_reply_free(r);
    else if (r)
        freeReplyObject(r);
    return st;
}

int rk_redis_append_script_loads(const rk_redis_common_t *c, redisContext *ctx) {
    for (int a = 0; a < c->scripts; a++) {
        const char *argv[3] = {"SCRIPT", "LOAD", c->script[a]};
        size_t lens[3] = {6, 4, c->script_len[a]};
        if (redisAppendCommandArgv(ctx, 3, argv, lens) != REDIS_OK)
            return REDIS_ERR;
    }
    return REDIS_OK;
}

rk_status_t rk_redis_read_script_loads(const rk_redis_common_t *c, redisContext *ctx, char *err,
                                       size_t errlen) {
    rk_status_t st = RK_OK;
    for (int a = 0; a < c->scripts; a++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            rk_redis_describe_failure(ctx, NULL, "SCRIPT LOAD", err, errlen);
            return RK_ERR;
        }
        if (st == RK_OK && (r->type != REDIS_REPLY_STRING || r->len != RK_REDIS_SHA_HEX ||
                            memcmp(r->str, c->sha[a], RK_REDIS_SHA_HEX) != 0)) {
            rk_redis_describe_failure(ctx, r, "SCRIPT LOAD", err, errlen);
            st = RK_ERR;
        }
        rk_reply_free(r);
    }
    return st;
}

/* ================================================================ */
/* Connections                                                       */
/* ================================================================ */

redisContext *rk_redis_connect(const rk_redis_common_t *c, const char *host, int port, char *err,
                               size_t errlen) {
    redisContext *ctx = redisConnectWithTimeout(host, port, c->connect_tv);
    if (!ctx) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: out of memory", host, port);
        return NULL;
    }
    if (ctx->err) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: %s", host, port, ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    /* redisConnectWithTimeout only bounds the connect: bound every command too. */
    if (redisSetTimeout(ctx, c->command_tv) != REDIS_OK) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: cannot set the command timeout", host, port);
        redisFree(ctx);
        return NULL;
    }
    redisEnableKeepAlive(ctx);
    return ctx;
}

redisContext *rk_redis_connect_store(const rk_redis_common_t *c, const char *host, int port,
                                     char *err, size_t errlen) {
    redisContext *ctx = rk_redis_connect(c, host, port, err, errlen);
    if (ctx && !rk_reply_arena_attach(ctx->reader)) {
        rk_redis_set_err(err, errlen, "redis at %s:%d: out of memory", host, port);
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

bool rk_redis_looks_stale(const redisContext *ctx, int io_errno) {
    return ctx->err == REDIS_ERR_EOF ||
           (ctx->err == REDIS_ERR_IO && (io_errno == ECONNRESET || io_errno == EPIPE));
}

/*
 * hiredis writes with write(): a socket the server closed would raise
 * SIGPIPE. ratekitd ignores it in main; make sure of it here as well, when
 * nobody installed a handler.
 */
void rk_redis_ignore_sigpipe(void) {
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

/* ================================================================ */
/* The breaker gate                                                  */
/* ================================================================ */

void rk_redis_gate_init(rk_redis_gate_t *g) {
    rk_breaker_init(&g->breaker, RK_REDIS_BREAKER_THRESHOLD, RK_REDIS_BREAKER_COOLDOWN_MS,
                    RK_REDIS_BREAKER_COOLDOWN_MAX_MS);
    atomic_init(&g->last_ok, true);
}

/*
 * Set on a prober thread: only it probes an open breaker. A client's check
 * taking the probe would wait out the command timeout on a hung Redis once
 * per cool-down, while every other check fails over at once.
 */
static _Thread_local bool on_prober;

bool rk_redis_gate_enter(rk_redis_gate_t *g, rk_breaker_ticket_t *ticket) {
    *ticket = rk_breaker_enter(&g->breaker, rk_mono_ms(), on_prober);
    if (*ticket == RK_BREAKER_REJECT) {
        atomic_store_explicit(&g->last_ok, false, memory_order_relaxed);
        return false;
    }
    return true;
}

void rk_redis_gate_leave(rk_redis_gate_t *g, rk_breaker_ticket_t ticket, bool ok, const char *who) {
    if (atomic_load_explicit(&g->last_ok, memory_order_relaxed) != ok)
        atomic_store_explicit(&g->last_ok, ok, memory_order_relaxed);
    rk_breaker_change_t change = rk_breaker_done(&g->breaker, ticket, ok, rk_mono_ms());
    if (change == RK_BREAKER_OPENED)
        rk_warn("%s is failing: checks fail over at once, probing every %d-%d ms", who,
                RK_REDIS_BREAKER_COOLDOWN_MS, RK_REDIS_BREAKER_COOLDOWN_MAX_MS);
    else if (change == RK_BREAKER_CLOSED)
        rk_info("%s answers again", who);
}

bool rk_redis_gate_healthy(rk_redis_gate_t *g) {
    return rk_breaker_closed(&g->breaker) &&
           atomic_load_explicit(&g->last_ok, memory_order_relaxed);
}

/* ================================================================ */
/* The prober                                                        */
/* ================================================================ */

rk_store_req_t rk_redis_probe_req(const char *key) {
    return (rk_store_req_t){.rule_id = RK_REDIS_PROBE_RULE,
                            .key = key,
                            .limit = {.algorithm = RK_ALG_FIXED_WINDOW,
                                      .limit = RK_LIMIT_MAX,
                                      .window_ms = 1000,
                                      .burst = RK_LIMIT_MAX},
                            .cost = 1,
                            .now_ms = -1};
}

/* The monotonic time RK_REDIS_PROBE_TICK_MS from now, for pthread_cond_timedwait. */
static struct timespec next_tick(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)RK_REDIS_PROBE_TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
    }
    return ts;
}

static void *prober_main(void *arg) {
    rk_redis_prober_t *p = arg;
    on_prober = true;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until = next_tick();
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
            ; /* woken early without stop: wait on to the tick */
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        if (!p->store->ops->healthy(p->store))
            p->probe(p->store);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

rk_status_t rk_redis_prober_start(rk_redis_prober_t *p, rk_store_t *store,
                                  void (*probe)(rk_store_t *store), const char *what, char *err,
                                  size_t errlen) {
    p->store = store;
    p->probe = probe;
    p->stop = false;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->lock, NULL);
    /* Signals are the main thread's business (it waits for SIGTERM): none here. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, prober_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        rk_redis_set_err(err, errlen, "%s: cannot start the health prober thread", what);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        return RK_ERR;
    }
    return RK_OK;
}

void rk_redis_prober_stop(rk_redis_prober_t *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
}
