/*
 * deny_cache.c — see deny_cache.h.
 *
 * Layout: RK_DENY_CACHE_SLOTS slots, direct-mapped by a seeded FNV-1a hash
 * of (rule id, key); slot i belongs to shard i / SLOTS_PER_SHARD, whose
 * mutex guards a lookup's compare-and-copy and a store's overwrite. A
 * collision overwrites: the cache only ever loses denials, and a lost
 * denial costs one store call. The seed (random per process) keeps clients
 * from choosing keys that evict each other's slots.
 */
#include "deny_cache.h"

#include <pthread.h>
#include <string.h>

#define SHARDS 128
#define SLOTS_PER_SHARD (RK_DENY_CACHE_SLOTS / SHARDS)

typedef struct {
    int64_t until_ms;    /* monotonic ms: denied while now < until_ms; 0: empty */
    int64_t reset_at_ms; /* monotonic ms at which the key is back to full */
    int64_t remaining;
    int64_t rule_version;
    rk_limit_t limit;
    uint64_t hash;
    uint16_t key_len;
    char rule_id[RK_RULE_ID_MAX + 1];
    char key[RK_STORE_KEY_MAX + 1];
} slot_t;

typedef struct {
    pthread_mutex_t lock;
    slot_t slots[SLOTS_PER_SHARD];
} shard_t;

static shard_t shards[SHARDS];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static uint64_t seed;

static void init_shards(void) {
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
    if (rk_random_bytes(&seed, sizeof seed) != RK_OK)
        seed = (uint64_t)rk_mono_ms() * 0x9e3779b97f4a7c15ULL;
}

/* Seeded FNV-1a of "rule_id\0key". */
static uint64_t hash_of(const char *rule_id, const char *key, size_t key_len) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (const unsigned char *p = (const unsigned char *)rule_id; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = (h ^ 0xffu) * 0x100000001b3ULL;
    for (size_t i = 0; i < key_len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static bool same_limit(const rk_limit_t *a, const rk_limit_t *b) {
    return a->algorithm == b->algorithm && a->limit == b->limit && a->window_ms == b->window_ms &&
           a->burst == b->burst && a->shape == b->shape;
}

/* The slot of a hash and its shard. */
static slot_t *slot_of(uint64_t h, shard_t **shard) {
    size_t i = (size_t)(h & (RK_DENY_CACHE_SLOTS - 1));
    *shard = &shards[i / SLOTS_PER_SHARD];
    return &(*shard)->slots[i % SLOTS_PER_SHARD];
}

static bool slot_holds(const slot_t *s, uint64_t h, const char *rule_id, const char *key,
                       size_t key_len) {
    return s->until_ms != 0 && s->hash == h && s->key_len == key_len &&
           !memcmp(s->key, key, key_len) && !strcmp(s->rule_id, rule_id);
}

bool rk_deny_cache_applies(const rk_limit_t *limit, int64_t cost) {
    if (cost != 1)
        return false; /* a cost-1 denial keeps remaining at 0 until it ends */
    if (limit->algorithm == RK_ALG_CONCURRENCY)
        return false;
    if (limit->algorithm == RK_ALG_LEAKY_BUCKET && limit->shape)
        return false;
    return true;
}

bool rk_deny_cache_lookup(const rk_rule_t *rule, const rk_limit_t *limit, const char *key,
                          int64_t mono_ms, rk_decision_t *out) {
    pthread_once(&init_once, init_shards);
    size_t key_len = strnlen(key, RK_STORE_KEY_MAX + 1);
    if (key_len > RK_STORE_KEY_MAX)
        return false;
    uint64_t h = hash_of(rule->id, key, key_len);
    shard_t *shard;
    slot_t *s = slot_of(h, &shard);
    bool hit = false;
    int64_t until = 0, reset_at = 0, remaining = 0;
    pthread_mutex_lock(&shard->lock);
    if (slot_holds(s, h, rule->id, key, key_len) && s->rule_version == rule->version &&
        same_limit(&s->limit, limit) && mono_ms < s->until_ms) {
        hit = true;
        until = s->until_ms;
        reset_at = s->reset_at_ms;
        remaining = s->remaining;
    }
    pthread_mutex_unlock(&shard->lock);
    if (!hit)
        return false;
    memset(out, 0, sizeof *out);
    out->allowed = false;
    out->limit = limit->limit;
    out->remaining = remaining;
    out->retry_after_ms = until - mono_ms;
    out->reset_ms = reset_at > mono_ms ? reset_at - mono_ms : 0;
    return true;
}

void rk_deny_cache_remember(const rk_rule_t *rule, const rk_limit_t *limit, const char *key,
                            int64_t sent_mono_ms, const rk_decision_t *d) {
    if (d->allowed || d->retry_after_ms <= 0)
        return;
    pthread_once(&init_once, init_shards);
    size_t key_len = strnlen(key, RK_STORE_KEY_MAX + 1);
    if (key_len > RK_STORE_KEY_MAX || strlen(rule->id) > RK_RULE_ID_MAX)
        return;
    uint64_t h = hash_of(rule->id, key, key_len);
    shard_t *shard;
    slot_t *s = slot_of(h, &shard);
    pthread_mutex_lock(&shard->lock);
    s->until_ms = sent_mono_ms + d->retry_after_ms;
    s->reset_at_ms = sent_mono_ms + d->reset_ms;
    s->remaining = d->remaining;
    s->rule_version = rule->version;
    s->limit = *limit;
    s->hash = h;
    s->key_len = (uint16_t)key_len;
    memcpy(s->key, key, key_len);
    s->key[key_len] = '\0';
    size_t id_len = strnlen(rule->id, RK_RULE_ID_MAX); /* ids are at most that long */
    memcpy(s->rule_id, rule->id, id_len);
    s->rule_id[id_len] = '\0';
    pthread_mutex_unlock(&shard->lock);
}

void rk_deny_cache_forget(const char *rule_id, const char *key) {
    pthread_once(&init_once, init_shards);
    size_t key_len = strnlen(key, RK_STORE_KEY_MAX + 1);
    if (key_len > RK_STORE_KEY_MAX)
        return;
    uint64_t h = hash_of(rule_id, key, key_len);
    shard_t *shard;
    slot_t *s = slot_of(h, &shard);
    pthread_mutex_lock(&shard->lock);
    if (slot_holds(s, h, rule_id, key, key_len))
        s->until_ms = 0;
    pthread_mutex_unlock(&shard->lock);
}

void rk_deny_cache_clear(void) {
    pthread_once(&init_once, init_shards);
    for (size_t i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        for (size_t j = 0; j < SLOTS_PER_SHARD; j++)
            shards[i].slots[j].until_ms = 0;
        pthread_mutex_unlock(&shards[i].lock);
    }
}
