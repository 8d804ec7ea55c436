#define _GNU_SOURCE
#include "ngff_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ngff_codecs.h"

uint8_t *ngff_buffer_reserve(ngff_buffer *b, size_t size)
{
    if (b->cap < size) {
        size_t cap = size + size / 8 + 64;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return NULL;
        b->data = p;
        b->cap = cap;
    }
    return b->data;
}

void ngff_buffer_free(ngff_buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

#if defined(__linux__) && defined(SYS_openat2) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define NGFF_HAVE_OPENAT2 1
#endif
#endif
#ifndef O_PATH /* not Linux: a plain descriptor of the directory serves openat */
#define O_PATH O_RDONLY
#endif

/* O_NONBLOCK: opening a FIFO without a writer (or a tty) must not wait; it has no effect on
 * reads of regular files. O_NOCTTY: a terminal named as a chunk never becomes ours. */
#define NGFF_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

#ifdef NGFF_HAVE_OPENAT2
/* Whether openat2 works here: 1 yes, 0 no (kernel < 5.6, or a seccomp filter refusing it),
 * -1 not probed yet. Probed once; a racing second probe finds the same answer. */
static int openat2_works = -1;
#endif

static int have_openat2(void)
{
#ifdef NGFF_HAVE_OPENAT2
    int known = __atomic_load_n(&openat2_works, __ATOMIC_RELAXED);
    if (known >= 0)
        return known;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    int works = fd >= 0;
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&openat2_works, works, __ATOMIC_RELAXED);
    return works;
#else
    return 0;
#endif
}

ngff_status ngff_root_open(ngff_root *r, const char *root, char *detail)
{
    r->fd = -1;
    r->path = root;
    r->len = strlen(root);
    r->real = NULL;
    if (r->len == 0 || root[r->len - 1] != '/')
        return NGFF_ERR_INVALID_ARGUMENT;
    /* the root itself may be a link: it is what the caller named */
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return NGFF_OK; /* nothing beneath it exists */
        snprintf(detail, NGFF_DETAIL_CAP, "open the store root: %s", strerror(errno));
        return NGFF_ERR_IO;
    }
    if (!have_openat2()) {
        r->real = realpath(root, NULL);
        if (!r->real) {
            int err = errno;
            close(fd);
            if (err == ENOMEM)
                return NGFF_ERR_NOMEM;
            snprintf(detail, NGFF_DETAIL_CAP, "resolve the store root: %s", strerror(err));
            return NGFF_ERR_IO;
        }
    }
    r->fd = fd;
    return NGFF_OK;
}

void ngff_root_close(ngff_root *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->real);
    r->real = NULL;
}

static const char *file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "FIFO";
    if (S_ISSOCK(mode))
        return "socket";
    if (S_ISCHR(mode))
        return "character device";
    if (S_ISBLK(mode))
        return "block device";
    if (S_ISDIR(mode))
        return "directory";
    return "special file";
}

static ngff_status outside_root(char *detail)
{
    snprintf(detail, NGFF_DETAIL_CAP,
             "a symbolic link leads outside the store root (refused unless the store is "
             "opened with follow_external_links=True)");
    return NGFF_ERR_IO;
}

/* The path of the file open as `fd`: the descriptor's own (it names the file actually
 * open), else `path` resolved (where /proc is not mounted). 0 if neither is known. */
static int resolved(int fd, const char *path, char buf[PATH_MAX])
{
    char proc[32];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, buf, PATH_MAX - 1);
    if (n > 0 && n < PATH_MAX - 1) {
        buf[n] = 0;
        return buf[0] == '/';
    }
    return path && realpath(path, buf) != NULL;
}

/* Whether the file open as `fd` is the directory whose resolved path is `real` or lies
 * beneath it. */
static int beneath(const char *real, int fd, const char *path)
{
    char buf[PATH_MAX];
    if (!resolved(fd, path, buf))
        return 0;
    size_t len = strlen(real);
    if (len == 1) /* the root is "/" */
        return 1;
    return strncmp(buf, real, len) == 0 && (buf[len] == '/' || buf[len] == 0);
}

int ngff_open_beneath(const ngff_root *root, const char *rel, int flags, const char *path)
{
    if (root->fd < 0) {
        errno = ENOENT; /* the root does not exist */
        return -1;
    }
    if (!*rel)
        rel = "."; /* the root itself */
    const char *real = root->real;
    int fd;
#ifdef NGFF_HAVE_OPENAT2
    char root_buf[PATH_MAX];
    if (!real) {
        /* one syscall resolves and confines: links inside the root work, none leaves it */
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        /* EAGAIN: a rename anywhere on the system raced a ".." step and the kernel could not
         * prove it stayed beneath; openat2(2) says to retry. Writers rename all the time, so
         * a busy machine sees this; after a few tries the checked openat below decides. */
        int tries = 0;
        do
            fd = (int)syscall(SYS_openat2, root->fd, rel, &how, sizeof how);
        while (fd < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < 16)));
        if (fd >= 0 || (errno != EXDEV && errno != EAGAIN))
            return fd;
        /* refused (or still racing); but an absolute link (always refused by RESOLVE_BENEATH)
         * may lead back inside the root: only these rare cases pay for resolving both paths */
        if (!resolved(root->fd, NULL, root_buf)) {
            errno = EXDEV;
            return -1;
        }
        real = root_buf;
    }
#endif
    if (!real) {
        errno = EXDEV;
        return -1;
    }
    do
        fd = openat(root->fd, rel, flags);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    if (!beneath(real, fd, path)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

ngff_status ngff_open_regular(const ngff_root *root, const char *path, int directory_missing,
                              int *fd_out, int64_t *size, char *detail)
{
    *fd_out = -1;
    *size = 0;
    int fd;
    if (root) {
        if (strncmp(path, root->path, root->len) != 0)
            return NGFF_ERR_INVALID_ARGUMENT;
        if (root->fd < 0)
            return NGFF_OK; /* the root does not exist: nothing beneath it does */
        fd = ngff_open_beneath(root, path + root->len, NGFF_OPEN_FLAGS, path);
    } else {
        do
            fd = open(path, NGFF_OPEN_FLAGS);
        while (fd < 0 && errno == EINTR);
    }
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return NGFF_OK;
        if (err == EXDEV && root)
            return outside_root(detail);
        if (err == ENXIO) { /* a socket (or a device with no driver): say which */
            struct stat sb;
            if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
                snprintf(detail, NGFF_DETAIL_CAP, "not a regular file (%s)",
                         file_kind(sb.st_mode));
                return NGFF_ERR_IO;
            }
        }
        if (err == EISDIR && directory_missing)
            return NGFF_OK;
        snprintf(detail, NGFF_DETAIL_CAP, "open: %s", strerror(err));
        return NGFF_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "fstat: %s", strerror(errno));
        close(fd);
        return NGFF_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        if (S_ISDIR(sb.st_mode) && directory_missing)
            return NGFF_OK;
        snprintf(detail, NGFF_DETAIL_CAP, "not a regular file (%s)", file_kind(sb.st_mode));
        return NGFF_ERR_IO;
    }
    *fd_out = fd;
    *size = (int64_t)sb.st_size;
    return NGFF_OK;
}

ngff_status ngff_local_open(const ngff_root *root, const char *path, int64_t offset,
                            int64_t len, ngff_local *f, int *missing, char *detail)
{
    *missing = 0;
    f->fd = -1;
    f->offset = offset;
    f->len = 0;
    if (offset < 0)
        return NGFF_ERR_INVALID_ARGUMENT;
    int fd;
    int64_t size;
    ngff_status st = ngff_open_regular(root, path, 0, &fd, &size, detail);
    if (st != NGFF_OK)
        return st;
    if (fd < 0) {
        *missing = 1;
        return NGFF_OK;
    }
    if (len < 0)
        len = size > offset ? size - offset : 0;
    else if (offset > size || len > size - offset) {
        snprintf(detail, NGFF_DETAIL_CAP, "file has %lld bytes, range ends at %lld",
                 (long long)size, (long long)(offset + len));
        close(fd);
        return NGFF_ERR_TRUNCATED;
    }
    f->fd = fd;
    f->len = len;
    return NGFF_OK;
}

void ngff_local_close(ngff_local *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

ngff_status ngff_local_pread(const ngff_local *f, uint8_t *dst, int64_t n, int64_t at,
                             char *detail)
{
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, dst + got, (size_t)(n - got), (off_t)(f->offset + at + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(detail, NGFF_DETAIL_CAP, "read: %s", strerror(errno));
            return NGFF_ERR_IO;
        }
        if (r == 0) {
            snprintf(detail, NGFF_DETAIL_CAP, "file ends after %lld of %lld bytes",
                     (long long)(at + got), (long long)(at + n));
            return NGFF_ERR_TRUNCATED;
        }
        got += r;
    }
    return NGFF_OK;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

ngff_status ngff_local_read_blosc_blocks(const ngff_local *f, ngff_buffer *buf, size_t lo,
                                         size_t hi, char *detail)
{
    enum { HEADER = 16, FLAG_SHUFFLE = 0x1, FLAG_MEMCPYED = 0x2, FLAG_BITSHUFFLE = 0x4,
           FLAG_DELTA = 0x8 };
    uint8_t header[HEADER];
    if (f->len < HEADER)
        return NGFF_ERR_UNSUPPORTED; /* the full read reports it */
    ngff_status st = ngff_local_pread(f, header, HEADER, 0, detail);
    if (st != NGFF_OK)
        return st;
    uint8_t flags = header[2];
    uint32_t typesize = header[3];
    uint32_t nbytes = le32(header + 4), blocksize = le32(header + 8), cbytes = le32(header + 12);
    /* getitem works in whole items: a range ending in trailing bytes needs a full decode;
     * a block size beyond nbytes (c-blosc2 decodes it as one block) is not laid out as the
     * block table below assumes */
    /* (delta: every block needs the first, and only a whole decode reads it) */
    if ((flags & (FLAG_MEMCPYED | FLAG_DELTA)) ||
        ((flags & FLAG_SHUFFLE) && (flags & FLAG_BITSHUFFLE)) ||
        blocksize == 0 || blocksize > nbytes || nbytes == 0 || typesize == 0 ||
        cbytes > (uint64_t)f->len ||
        cbytes > INT32_MAX || hi > (nbytes / typesize) * typesize || lo >= hi)
        return NGFF_ERR_UNSUPPORTED;
    uint64_t nblocks = ((uint64_t)nbytes + blocksize - 1) / blocksize;
    uint64_t table_end = HEADER + 4 * nblocks;
    if (table_end > cbytes)
        return NGFF_ERR_UNSUPPORTED;
    uint8_t *data = ngff_buffer_reserve(buf, cbytes);
    if (!data)
        return NGFF_ERR_NOMEM;
    memcpy(data, header, HEADER);
    st = ngff_local_pread(f, data + HEADER, (int64_t)(table_end - HEADER), HEADER, detail);
    if (st != NGFF_OK)
        return st;
    uint64_t first = lo / blocksize, last = (hi - 1) / blocksize; /* inclusive */
    uint64_t start = le32(data + HEADER + 4 * first);
    uint64_t end = last + 1 < nblocks ? le32(data + HEADER + 4 * (last + 1)) : cbytes;
    if (start < table_end || end > cbytes || start >= end)
        return NGFF_ERR_UNSUPPORTED;
    /* blocks of a plain frame follow the table in order: anything else is not ours to trust */
    for (uint64_t b = first; b <= last; b++) {
        uint64_t bs = le32(data + HEADER + 4 * b);
        if (bs < start || bs > end)
            return NGFF_ERR_UNSUPPORTED;
    }
    return ngff_local_pread(f, data + start, (int64_t)(end - start), (int64_t)start, detail);
}
