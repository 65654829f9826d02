/*
 * thread_records.c — see thread_records.h.
 */
#include "thread_records.h"

#include <stdlib.h>

static void unlink_record(rk_thread_records_t *t, rk_thread_record_t *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        t->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* pthread key destructor: a thread that used the store exits. */
static void thread_exit(void *p) {
    rk_thread_record_t *r = p;
    rk_thread_records_t *t = r->owner;
    pthread_mutex_lock(&t->lock);
    unlink_record(t, r);
    pthread_mutex_unlock(&t->lock);
    t->drop(r);
    free(r);
}

rk_status_t rk_thread_records_init(rk_thread_records_t *t, size_t size,
                                   void (*drop)(rk_thread_record_t *r)) {
    t->head = NULL;
    t->size = size;
    t->drop = drop;
    if (pthread_key_create(&t->key, thread_exit) != 0)
        return RK_ERR;
    pthread_mutex_init(&t->lock, NULL);
    return RK_OK;
}

rk_thread_record_t *rk_thread_record(rk_thread_records_t *t) {
    rk_thread_record_t *r = pthread_getspecific(t->key);
    if (RK_LIKELY(r != NULL))
        return r;
    r = calloc(1, t->size);
    if (!r)
        return NULL;
    r->owner = t;
    if (pthread_setspecific(t->key, r) != 0) {
        free(r);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    r->next = t->head;
    if (t->head)
        t->head->prev = r;
    t->head = r;
    pthread_mutex_unlock(&t->lock);
    return r;
}

void rk_thread_records_destroy(rk_thread_records_t *t) {
    pthread_setspecific(t->key, NULL);
    pthread_key_delete(t->key); /* no destructor runs after this */
    pthread_mutex_lock(&t->lock);
    rk_thread_record_t *r = t->head;
    t->head = NULL;
    pthread_mutex_unlock(&t->lock);
    while (r) {
        rk_thread_record_t *next = r->next;
        t->drop(r);
        free(r);
        r = next;
    }
    pthread_mutex_destroy(&t->lock);
}
