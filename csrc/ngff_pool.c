#include "ngff_pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    const ngff_batch *batch;
    int64_t next; /* next chunk to claim */
    int64_t done; /* chunks finished */
    pthread_cond_t finished;
    struct job *link;
} job;

struct ngff_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *queue; /* jobs that still have chunks to claim, oldest first */
    int stopping;
    int32_t nthreads;
    int32_t nbackground;
    pthread_t *threads;
    ngff_worker **workers; /* one per background thread */
    ngff_worker **idle;    /* workers lent to calling threads, not in use now */
    int32_t n_idle, cap_idle;
    int refs; /* guarded by lock */
};

static void unlink_job(ngff_pool *pool, job *j)
{
    job **pp = &pool->queue;
    while (*pp && *pp != j)
        pp = &(*pp)->link;
    if (*pp)
        *pp = j->link;
}

/* Claims the next chunk of j; called with the lock held. */
static int64_t claim(ngff_pool *pool, job *j)
{
    int64_t i = j->next++;
    if (j->next >= j->batch->n_chunks)
        unlink_job(pool, j);
    return i;
}

static void finish(job *j)
{
    if (++j->done == j->batch->n_chunks)
        pthread_cond_broadcast(&j->finished);
}

typedef struct {
    ngff_pool *pool;
    ngff_worker *worker;
} thread_arg;

static void *worker_main(void *arg_)
{
    thread_arg *arg = arg_;
    ngff_pool *pool = arg->pool;
    ngff_worker *w = arg->worker;
    free(arg);
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && !pool->queue)
            pthread_cond_wait(&pool->work, &pool->lock);
        if (pool->stopping)
            break;
        job *j = pool->queue;
        int64_t i = claim(pool, j);
        pthread_mutex_unlock(&pool->lock);
        ngff_decode_chunk(w, j->batch, i);
        pthread_mutex_lock(&pool->lock);
        finish(j);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void destroy(ngff_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (int32_t t = 0; t < pool->nbackground; t++)
        pthread_join(pool->threads[t], NULL);
    for (int32_t t = 0; t < pool->nbackground; t++)
        ngff_worker_destroy(pool->workers[t]);
    for (int32_t t = 0; t < pool->n_idle; t++)
        ngff_worker_destroy(pool->idle[t]);
    free(pool->idle);
    free(pool->threads);
    free(pool->workers);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

ngff_pool *ngff_pool_create(int32_t nthreads)
{
    if (nthreads < 1 || nthreads > 1024)
        return NULL;
    ngff_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->nthreads = nthreads;
    pool->refs = 1;
    int32_t nbg = nthreads - 1;
    pool->threads = calloc((size_t)(nbg > 0 ? nbg : 1), sizeof *pool->threads);
    pool->workers = calloc((size_t)(nbg > 0 ? nbg : 1), sizeof *pool->workers);
    if (!pool->threads || !pool->workers) {
        destroy(pool);
        return NULL;
    }
    for (int32_t t = 0; t < nbg; t++) {
        thread_arg *arg = malloc(sizeof *arg);
        ngff_worker *w = ngff_worker_create();
        if (!arg || !w) {
            free(arg);
            ngff_worker_destroy(w);
            destroy(pool);
            return NULL;
        }
        arg->pool = pool;
        arg->worker = w;
        if (pthread_create(&pool->threads[t], NULL, worker_main, arg) != 0) {
            free(arg);
            ngff_worker_destroy(w);
            destroy(pool);
            return NULL;
        }
        pool->workers[t] = w;
        pool->nbackground++;
    }
    return pool;
}

void ngff_pool_retain(ngff_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->refs++;
    pthread_mutex_unlock(&pool->lock);
}

void ngff_pool_release(ngff_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int last = --pool->refs == 0;
    pthread_mutex_unlock(&pool->lock);
    if (last)
        destroy(pool);
}

int32_t ngff_pool_threads(const ngff_pool *pool) { return pool->nthreads; }

/* Caller threads borrow a worker (scratch buffers, codec contexts) for one batch. */
static ngff_worker *borrow(ngff_pool *pool)
{
    ngff_worker *w = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->n_idle > 0)
        w = pool->idle[--pool->n_idle];
    pthread_mutex_unlock(&pool->lock);
    return w ? w : ngff_worker_create();
}

static void give_back(ngff_pool *pool, ngff_worker *w)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->n_idle == pool->cap_idle) {
        int32_t cap = pool->cap_idle ? pool->cap_idle * 2 : 4;
        ngff_worker **idle = realloc(pool->idle, (size_t)cap * sizeof *idle);
        if (!idle) {
            pthread_mutex_unlock(&pool->lock);
            ngff_worker_destroy(w);
            return;
        }
        pool->idle = idle;
        pool->cap_idle = cap;
    }
    pool->idle[pool->n_idle++] = w;
    pthread_mutex_unlock(&pool->lock);
}

ngff_status ngff_pool_run(ngff_pool *pool, const ngff_batch *batch, int64_t *first_failed)
{
    *first_failed = -1;
    if (batch->n_chunks <= 0)
        return NGFF_OK;
    ngff_worker *w = borrow(pool);
    if (!w)
        return NGFF_ERR_NOMEM;
    job j = {.batch = batch, .next = 0, .done = 0, .link = NULL};
    pthread_cond_init(&j.finished, NULL);
    pthread_mutex_lock(&pool->lock);
    if (batch->n_chunks > 1 && pool->nbackground > 0) {
        job **tail = &pool->queue;
        while (*tail)
            tail = &(*tail)->link;
        *tail = &j;
        pthread_cond_broadcast(&pool->work);
    }
    /* the caller works on its own batch only, so it returns as soon as that is done */
    while (j.next < batch->n_chunks) {
        int64_t i = claim(pool, &j);
        pthread_mutex_unlock(&pool->lock);
        ngff_decode_chunk(w, batch, i);
        pthread_mutex_lock(&pool->lock);
        finish(&j);
    }
    while (j.done < batch->n_chunks)
        pthread_cond_wait(&j.finished, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_destroy(&j.finished);
    give_back(pool, w);
    for (int64_t i = 0; i < batch->n_chunks; i++)
        if (batch->results[i].status != NGFF_OK) {
            *first_failed = i;
            return (ngff_status)batch->results[i].status;
        }
    return NGFF_OK;
}
