#define _GNU_SOURCE
#include "ngff_write_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "ngff_codecs.h"
#include "ngff_encode.h"
#include "ngff_grid.h"

#ifndef O_PATH /* not Linux: a plain descriptor of the directory serves the *at calls */
#define O_PATH O_RDONLY
#endif

#define WF_PATH_CAP 4096
#define WF_DIR_FLAGS (O_DIRECTORY | O_CLOEXEC)
#define WF_TMP_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY)

/* Per-thread state kept between chunks and calls (as ngff_encode.c's), so a chunk allocates
 * nothing: the encoded bytes, and a fallback random state. */
typedef struct wf_state {
    ngff_buffer out;
    uint64_t rng;
} wf_state;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_destroy(void *arg)
{
    wf_state *s = arg;
    if (!s)
        return;
    ngff_buffer_free(&s->out);
    free(s);
}

static void state_key_create(void)
{
    state_key_ok = pthread_key_create(&state_key, state_destroy) == 0;
}

static wf_state *thread_state(void)
{
    pthread_once(&state_once, state_key_create);
    if (!state_key_ok)
        return NULL;
    wf_state *s = pthread_getspecific(state_key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (s && pthread_setspecific(state_key, s) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

static ngff_status fail(ngff_chunk_result *r, ngff_status st, const char *what, int err)
{
    r->status = st;
    r->codec = 0;
    if (what)
        snprintf(r->detail, NGFF_DETAIL_CAP, "%s: %s", what, strerror(err));
    return st;
}

static ngff_status outside_root(ngff_chunk_result *r)
{
    snprintf(r->detail, NGFF_DETAIL_CAP,
             "a symbolic link leads outside the store root (refused unless the store is "
             "opened with follow_external_links=True)");
    r->status = NGFF_ERR_IO;
    r->codec = 0;
    return NGFF_ERR_IO;
}

/* Temporary names need only be unlikely to collide (O_EXCL catches the rest): the kernel's
 * random bytes, else a per-thread splitmix64 seeded from the clock and the thread. */
static uint64_t random64(wf_state *s)
{
    uint64_t x;
#if defined(__linux__)
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) == (ssize_t)sizeof x)
        return x;
#endif
    if (!s->rng) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)s ^
                 ((uint64_t)getpid() << 17);
    }
    x = (s->rng += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The directory `rel` (relative to the root, "" the root itself) opened beneath the root as
 * chunk files are read (ngff_open_beneath): its fd, or -1 with errno (EXDEV: outside). */
static int open_dir_beneath(const ngff_root *r, const char *rel, int flags)
{
    return ngff_open_beneath(r, rel, flags, NULL);
}

/* The directory `dir` (a path ending in '/'), beneath the root when confined. */
static int open_dir(const ngff_write_files *w, const char *dir, int flags)
{
    if (w->confine)
        return open_dir_beneath(w->confine, dir + w->confine->len, flags);
    int fd;
    do
        fd = open(dir, flags);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Creates the missing directories of `dir` (a path ending in '/'; its bytes are restored).
 * Confined: one component at a time, each mkdirat'ed in its parent opened beneath the root,
 * so no link leads a directory outside. */
static ngff_status make_dirs(const ngff_write_files *w, char *dir, ngff_chunk_result *res,
                             int *mkerr_out)
{
    int mkerr = 0;
    if (!w->confine) {
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = 0;
            if (mkdir(dir, 0777) != 0 && errno != EEXIST && !mkerr)
                mkerr = errno;
            *p = '/';
        }
        *mkerr_out = mkerr; /* the caller's open tells whether it mattered */
        return NGFF_OK;
    }
    const ngff_root *r = w->confine;
    int parent = open_dir_beneath(r, "", O_PATH | WF_DIR_FLAGS);
    if (parent < 0)
        return fail(res, NGFF_ERR_IO, "open the store root", errno);
    char *rel = dir + r->len;
    for (size_t s = 0, e; rel[s]; s = rel[e] ? e + 1 : e) {
        for (e = s; rel[e] && rel[e] != '/';)
            e++;
        if (e == s)
            continue; /* "a//b" */
        char save = rel[e];
        rel[e] = 0;
        if (mkdirat(parent, rel + s, 0777) != 0 && errno != EEXIST && !mkerr)
            mkerr = errno;
        int next = open_dir_beneath(r, rel, O_PATH | WF_DIR_FLAGS);
        int err = errno;
        rel[e] = save;
        close(parent);
        if (next < 0) {
            if (err == EXDEV)
                return outside_root(res);
            return fail(res, NGFF_ERR_IO, "create the directory", mkerr ? mkerr : err);
        }
        parent = next;
    }
    close(parent);
    return NGFF_OK;
}

/* `data` as the file `name` in `dir`: a temporary file beside it, written whole, renamed
 * over it. */
static ngff_status write_file(const ngff_write_files *w, wf_state *s, char *dir,
                              const char *name, const uint8_t *data, int64_t len,
                              ngff_chunk_result *res)
{
    /* fsync needs a readable descriptor of the directory; O_PATH otherwise (no read right
     * needed, as Python's write needs none) */
    const int dflags = (w->fsync ? O_RDONLY : O_PATH) | WF_DIR_FLAGS;
    int dfd = open_dir(w, dir, dflags), mkerr = 0;
    if (dfd < 0 && errno == ENOENT) { /* the first object of its directory */
        ngff_status st = make_dirs(w, dir, res, &mkerr);
        if (st != NGFF_OK)
            return st;
        dfd = open_dir(w, dir, dflags);
    }
    if (dfd < 0) {
        if (errno == EXDEV && w->confine)
            return outside_root(res);
        if (errno == ENOENT && mkerr)
            return fail(res, NGFF_ERR_IO, "create the directory", mkerr);
        return fail(res, NGFF_ERR_IO, "open the directory", errno);
    }
    char tmp[NAME_MAX + 1];
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        int n = snprintf(tmp, sizeof tmp, ".%s.%016llx.partial", name,
                         (unsigned long long)random64(s));
        if (n < 0 || (size_t)n >= sizeof tmp) {
            err = ENAMETOOLONG;
            break;
        }
        do
            fd = openat(dfd, tmp, WF_TMP_FLAGS, 0666);
        while (fd < 0 && errno == EINTR);
        err = fd < 0 ? errno : 0;
        if (fd < 0 && err != EEXIST)
            break; /* EEXIST: another writer's name: draw again */
    }
    if (fd < 0) {
        close(dfd);
        return fail(res, NGFF_ERR_IO, "create the temporary file", err);
    }
    const char *what = NULL;
    for (int64_t done = 0; done < len;) {
        size_t step = (size_t)(len - done < (1 << 30) ? len - done : (1 << 30));
        ssize_t n = write(fd, data + done, step);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            what = "write";
            err = n < 0 ? errno : EIO;
            break;
        }
        done += n;
    }
    if (!what && w->fsync && fsync(fd) != 0) {
        what = "fsync";
        err = errno;
    }
    if (close(fd) != 0 && !what && errno != EINTR) { /* NFS reports write errors here */
        what = "close";
        err = errno;
    }
    if (!what && renameat(dfd, tmp, dfd, name) != 0) {
        what = "rename over the key";
        err = errno;
    }
    if (what) {
        unlinkat(dfd, tmp, 0);
        close(dfd);
        return fail(res, NGFF_ERR_IO, what, err);
    }
    if (w->fsync && fsync(dfd) != 0) {
        err = errno;
        close(dfd);
        return fail(res, NGFF_ERR_IO, "fsync the directory", err);
    }
    close(dfd);
    return NGFF_OK;
}

/* An all-fill chunk: its file is removed (a missing file or directory already reads as fill). */
static ngff_status delete_file(const ngff_write_files *w, char *dir, const char *name,
                               ngff_chunk_result *res)
{
    int dfd = open_dir(w, dir, (w->fsync ? O_RDONLY : O_PATH) | WF_DIR_FLAGS);
    if (dfd < 0) {
        if (errno == ENOENT)
            return NGFF_OK;
        if (errno == EXDEV && w->confine)
            return outside_root(res);
        return fail(res, NGFF_ERR_IO, "open the directory", errno);
    }
    int err = 0;
    if (unlinkat(dfd, name, 0) != 0)
        err = errno == ENOENT ? 0 : errno;
    else if (w->fsync && fsync(dfd) != 0)
        err = errno;
    close(dfd);
    return err ? fail(res, NGFF_ERR_IO, "delete", err) : NGFF_OK;
}

typedef struct wf_job {
    const ngff_write_files *w;
    ngff_encode_batch one; /* the value and pipeline; each task sets its chunk's box and out */
    size_t root_len;
} wf_job;

static ngff_status write_task(void *arg, int64_t i)
{
    const wf_job *job = arg;
    const ngff_write_files *w = job->w;
    const ngff_pipeline *p = w->pipeline;
    const int32_t ndim = p->ndim;
    ngff_chunk_result *res = &w->results[i];
    res->status = NGFF_OK;
    res->codec = 0;
    res->detail[0] = 0;
    w->actions[i] = NGFF_WRITE_FAILED;
    w->nbytes[i] = 0;
    const int64_t *box = w->boxes + i * 3 * ndim, *coords = w->chunk_coords + i * ndim;
    /* no old bytes are merged: a box must be the chunk's whole in-array part */
    for (int32_t d = 0; d < ndim; d++) {
        int64_t c = p->chunk_shape[d], left = w->shape[d] - coords[d] * c;
        if (coords[d] < 0 || coords[d] > w->shape[d] / c || NGFF_BOX_INNER(box, ndim)[d] != 0 ||
            NGFF_BOX_SHAPE(box, ndim)[d] != (left < c ? left : c)) {
            snprintf(res->detail, NGFF_DETAIL_CAP, "the box does not cover the whole chunk");
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, NULL, 0);
        }
    }
    wf_state *s = thread_state();
    uint8_t *buf = s ? ngff_buffer_reserve(&s->out, job->one.out_stride ?
                                                       (size_t)job->one.out_stride : 1)
                     : NULL;
    if (!buf)
        return fail(res, NGFF_ERR_NOMEM, NULL, 0);
    /* the gather + encode of ngff_pool_encode, for this one chunk, on this thread */
    ngff_encode_batch one = job->one;
    int64_t len = 0, failed;
    one.boxes = box;
    one.out = buf;
    one.out_lens = &len;
    one.results = res;
    ngff_status st = ngff_pool_encode(NULL, &one, &failed);
    if (st != NGFF_OK) {
        res->status = st; /* also when the batch itself was refused */
        return st;
    }
    char path[WF_PATH_CAP], dir[WF_PATH_CAP];
    int64_t key_len = ngff_chunk_key(w->key_encoding, w->key_separator, ndim, coords,
                                     path + job->root_len, sizeof path - job->root_len - 1);
    if (key_len < 0)
        return fail(res, NGFF_ERR_INVALID_ARGUMENT, NULL, 0);
    memcpy(path, w->root, job->root_len);
    path[job->root_len + (size_t)key_len] = 0;
    size_t slash = (size_t)(strrchr(path, '/') - path); /* root ends in '/' */
    memcpy(dir, path, slash + 1);
    dir[slash + 1] = 0;
    const char *name = path + slash + 1;
    if (len < 0) {
        st = delete_file(w, dir, name, res);
        if (st == NGFF_OK)
            w->actions[i] = NGFF_WRITE_DELETED;
        return st;
    }
    st = write_file(w, s, dir, name, buf, len, res);
    if (st == NGFF_OK) {
        w->actions[i] = NGFF_WRITE_WRITTEN;
        w->nbytes[i] = len;
    }
    return st;
}

ngff_status ngff_pool_write_files(ngff_pool *pool, const ngff_write_files *w,
                                  int64_t *first_failed)
{
    *first_failed = -1;
    if (w->n_chunks <= 0)
        return NGFF_OK;
    const ngff_pipeline *p = w->pipeline;
    if (!p || !w->in || !w->shape || !w->chunk_coords || !w->boxes || !w->root ||
        !w->results || !w->actions || !w->nbytes)
        return NGFF_ERR_INVALID_ARGUMENT;
    size_t root_len = strlen(w->root);
    if (root_len == 0 || w->root[root_len - 1] != '/' || root_len >= WF_PATH_CAP - 1)
        return NGFF_ERR_INVALID_ARGUMENT;
    if (w->confine && (root_len < w->confine->len ||
                       strncmp(w->root, w->confine->path, w->confine->len) != 0))
        return NGFF_ERR_INVALID_ARGUMENT;
    for (int32_t d = 0; d < p->ndim; d++)
        if (p->chunk_shape[d] <= 0 || w->shape[d] < 0)
            return NGFF_ERR_INVALID_ARGUMENT;
    int64_t bound = ngff_encode_bound(p);
    if (bound < 0 || (uint64_t)bound > SIZE_MAX)
        return NGFF_ERR_OVERFLOW;
    wf_job job = {.w = w, .root_len = root_len};
    job.one = (ngff_encode_batch){.pipeline = p, .in = w->in, .n_chunks = 1,
                                  .out_stride = bound, .skip_fill = w->skip_fill};
    memcpy(job.one.in_strides, w->in_strides, sizeof job.one.in_strides);
    ngff_pool_for(pool, w->n_chunks, write_task, &job, NULL);
    for (int64_t i = 0; i < w->n_chunks; i++)
        if (w->results[i].status != NGFF_OK) {
            *first_failed = i;
            return (ngff_status)w->results[i].status;
        }
    return NGFF_OK;
}
