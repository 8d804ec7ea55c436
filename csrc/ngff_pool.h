/* Native worker pool: decodes and scatters whole batches, or runs a generic parallel for;
 * the calling thread works too. */
#ifndef NGFF_POOL_H
#define NGFF_POOL_H

#include <stdint.h>
#include "ngff_decode.h"
#include "ngff_status.h"

typedef struct ngff_pool ngff_pool;

/* A pool running `nthreads` workers in total: nthreads - 1 background threads plus each
 * calling thread. Returns NULL on failure. The pool starts with one reference. */
ngff_pool *ngff_pool_create(int32_t nthreads);
void ngff_pool_retain(ngff_pool *pool);
/* Drops a reference; the last one stops and joins the threads. */
void ngff_pool_release(ngff_pool *pool);
int32_t ngff_pool_threads(const ngff_pool *pool);

/* Runs every chunk of the batch; many threads may run batches on one pool at once. Returns
 * NGFF_OK, or the status of the lowest-numbered failed chunk (its index in *first_failed;
 * every chunk's status is in batch->results). Never touches Python. */
ngff_status ngff_pool_run(ngff_pool *pool, const ngff_batch *batch, int64_t *first_failed);

/* One task of ngff_pool_for: NGFF_OK or the task's failure. Must not touch Python. */
typedef ngff_status (*ngff_task_fn)(void *ctx, int64_t task);

/* Runs fn(ctx, i) for every i in [0, n_tasks) on the pool's threads and the calling thread,
 * in any order and concurrently (fn must be safe for that), and returns when all have
 * finished. Returns NGFF_OK, or the status of the lowest-numbered failed task (its index in
 * *first_failed when that is not NULL; -1 if none failed). Every task runs even if another
 * failed. pool NULL: the calling thread runs them all, in order. n_tasks <= 0: nothing.
 * Many threads may call this (and ngff_pool_run) on one pool at once. */
ngff_status ngff_pool_for(ngff_pool *pool, int64_t n_tasks, ngff_task_fn fn, void *ctx,
                          int64_t *first_failed);

#endif
