/* Native worker pool: decodes and scatters whole batches; the calling thread works too. */
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

#endif
