/*
 * thread_records.h — one record per thread for a store (its Redis
 * connections: a hiredis context must not be shared between threads),
 * created on the thread's first use and freed when the thread exits or the
 * store is destroyed, whichever comes first.
 */
#ifndef RK_THREAD_RECORDS_H
#define RK_THREAD_RECORDS_H

#include <pthread.h>

#include "../common.h"

/* The first member of a caller's record. */
typedef struct rk_thread_record {
    struct rk_thread_records *owner;
    struct rk_thread_record *prev, *next;
} rk_thread_record_t;

typedef struct rk_thread_records {
    pthread_key_t key;
    pthread_mutex_t lock; /* guards head */
    rk_thread_record_t *head;
    size_t size;                         /* bytes of a caller's record */
    void (*drop)(rk_thread_record_t *r); /* frees what a record holds, not the record */
} rk_thread_records_t;

/* Records of size bytes (at least sizeof(rk_thread_record_t)); RK_ERR when no key is left. */
rk_status_t rk_thread_records_init(rk_thread_records_t *t, size_t size,
                                   void (*drop)(rk_thread_record_t *r));
/* This thread's record, zeroed and registered on first use; NULL when out of memory. */
rk_thread_record_t *rk_thread_record(rk_thread_records_t *t);
/* Drops and frees every record. No thread may use them (nor exit having used them) meanwhile. */
void rk_thread_records_destroy(rk_thread_records_t *t);

#endif
