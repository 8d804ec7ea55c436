#define _GNU_SOURCE
#include "ngff_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

ngff_status ngff_local_open(const char *path, int64_t offset, int64_t len, ngff_local *f,
                            int *missing, char *detail)
{
    *missing = 0;
    f->fd = -1;
    f->offset = offset;
    f->len = 0;
    if (offset < 0)
        return NGFF_ERR_INVALID_ARGUMENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *missing = 1;
            return NGFF_OK;
        }
        snprintf(detail, NGFF_DETAIL_CAP, "open: %s", strerror(errno));
        return NGFF_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "fstat: %s", strerror(errno));
        close(fd);
        return NGFF_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(detail, NGFF_DETAIL_CAP, "not a regular file");
        close(fd);
        return NGFF_ERR_IO;
    }
    int64_t size = (int64_t)sb.st_size;
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
