#include "ngff_pool.h"

#include <pthread.h>
#include <stdlib.h>

/* A decode batch (batch != NULL) or a parallel for (fn != NULL) in progress. */
typedef struct job {
    const ngff_batch *batch;
    ngff_task_fn fn;
    void *ctx;
    int64_t n;    /* chunks or tasks */
    int64_t next; /* next one to claim */
    int64_t done; /* finished */
    int64_t failed; /* parallel for: lowest failed task, -1 if none */
    ngff_status status; /* parallel for: its status */
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

/* Claims the next chunk or task of j; called with the lock held. */
static int64_t claim(ngff_pool *pool, job *j)
{
    int64_t i = j->next++;
    if (j->next >= j->n)
        unlink_job(pool, j);
    return i;
}

/* Runs item i of j without the lock; returns its status (parallel for only). */
static ngff_status run_item(ngff_worker *w, job *j, int64_t i)
{
    if (j->batch) {
        ngff_decode_chunk(w, j->batch, i);
        return NGFF_OK;
    }
    return j->fn(j->ctx, i);
}

/* Called with the lock held once item i has run. */
static void finish(job *j, int64_t i, ngff_status st)
{
    if (st != NGFF_OK && (j->failed < 0 || i < j->failed)) {
        j->failed = i;
        j->status = st;
    }
    if (++j->done == j->n)
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
        ngff_status st = run_item(w, j, i);
        pthread_mutex_lock(&pool->lock);
        finish(j, i, st);
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

/* Queues j (when it has more than one item and there are background threads), works on it
 * on the calling thread until every item is claimed, and waits for the others to finish. */
static void run_job(ngff_pool *pool, job *j, ngff_worker *w)
{
    pthread_cond_init(&j->finished, NULL);
    pthread_mutex_lock(&pool->lock);
    if (j->n > 1 && pool->nbackground > 0) {
        job **tail = &pool->queue;
        while (*tail)
            tail = &(*tail)->link;
        *tail = j;
        pthread_cond_broadcast(&pool->work);
    }
    /* the caller works on its own job only, so it returns as soon as that is done */
    while (j->next < j->n) {
        int64_t i = claim(pool, j);
        pthread_mutex_unlock(&pool->lock);
        ngff_status st = run_item(w, j, i);
        pthread_mutex_lock(&pool->lock);
        finish(j, i, st);
    }
    while (j->done < j->n)
        pthread_cond_wait(&j->finished, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_destroy(&j->finished);
}

ngff_status ngff_pool_run(ngff_pool *pool, const ngff_batch *batch, int64_t *first_failed)
{
    *first_failed = -1;
    if (batch->n_chunks <= 0)
        return NGFF_OK;
    ngff_worker *w = borrow(pool);
    if (!w)
        return NGFF_ERR_NOMEM;
    job j = {.batch = batch, .n = batch->n_chunks, .failed = -1, .status = NGFF_OK};
    run_job(pool, &j, w);
    give_back(pool, w);
    for (int64_t i = 0; i < batch->n_chunks; i++)
        if (batch->results[i].status != NGFF_OK) {
            *first_failed = i;
            return (ngff_status)batch->results[i].status;
        }
    return NGFF_OK;
}

ngff_status ngff_pool_for(ngff_pool *pool, int64_t n_tasks, ngff_task_fn fn, void *ctx,
                          int64_t *first_failed)
{
    if (first_failed)
        *first_failed = -1;
    if (n_tasks <= 0)
        return NGFF_OK;
    if (!fn)
        return NGFF_ERR_INVALID_ARGUMENT;
    job j = {.fn = fn, .ctx = ctx, .n = n_tasks, .failed = -1, .status = NGFF_OK};
    if (!pool) {
        for (int64_t i = 0; i < n_tasks; i++) {
            ngff_status st = fn(ctx, i);
            if (st != NGFF_OK && j.failed < 0) {
                j.failed = i;
                j.status = st;
            }
        }
    } else {
        run_job(pool, &j, NULL); /* tasks need no worker state */
    }
    if (first_failed)
        *first_failed = j.failed;
    return j.status;
}
