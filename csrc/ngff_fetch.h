/* Local chunk objects for the workers: pread into a buffer (mmap was measured slower: see
 * docs/design.md). */
#ifndef NGFF_FETCH_H
#define NGFF_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "ngff_status.h"

typedef struct ngff_buffer {
    uint8_t *data;
    size_t cap;
} ngff_buffer;

/* Grows (never shrinks) the buffer to hold `size` bytes; NULL if out of memory. */
uint8_t *ngff_buffer_reserve(ngff_buffer *b, size_t size);
void ngff_buffer_free(ngff_buffer *b);

/* One object range [offset, offset + len) of an open local file. */
typedef struct ngff_local {
    int fd;
    int64_t offset;
    int64_t len;
} ngff_local;

/* The directory chunk files must stay beneath: a path that resolves outside it (through a
 * symbolic link, absolute or relative) is refused, while links that stay inside keep working.
 * Opened once per batch, so a chunk costs no syscall beyond its own open. */
typedef struct ngff_root {
    int fd;           /* O_PATH descriptor of the root, or -1 if the root does not exist */
    const char *path; /* the root's path, ending in '/' (the caller's string) */
    size_t len;       /* strlen(path): every path opened beneath it starts with it */
    char *real;       /* its resolved path, only where openat2 is unavailable (else NULL) */
} ngff_root;

/* `root` is the root's path ending in '/'; it must outlive the ngff_root. */
ngff_status ngff_root_open(ngff_root *r, const char *root, char *detail);
void ngff_root_close(ngff_root *r);

/* `rel` (relative to the root; "" is the root itself) opened with `flags` beneath the root:
 * links inside it work, none leads out. Returns the fd, or -1 with errno (EXDEV: it resolves
 * outside; ENOENT also when the root does not exist). `path`, the full path, lets the check
 * fall back to realpath where /proc is not mounted (NULL: no fallback). */
int ngff_open_beneath(const ngff_root *root, const char *rel, int flags, const char *path);

/* Opens `path` for reading without ever blocking (O_NONBLOCK: a FIFO is not waited on) and
 * only if it is a regular file: a FIFO, socket or device is NGFF_ERR_IO, at once, and never
 * read. With `root` (else NULL: links are followed anywhere) the path must start with the
 * root's path and resolve beneath it. A path that does not exist (a dangling link included)
 * gives *fd = -1 and NGFF_OK; so does a directory when `directory_missing`. */
ngff_status ngff_open_regular(const ngff_root *root, const char *path, int directory_missing,
                              int *fd, int64_t *size, char *detail);

/* Opens `path` (see ngff_open_regular) and resolves the range (len < 0: to the end of the
 * file). A file that does not exist sets *missing (and fd = -1); a range past the end of the
 * file is NGFF_ERR_TRUNCATED. */
ngff_status ngff_local_open(const ngff_root *root, const char *path, int64_t offset,
                            int64_t len, ngff_local *f, int *missing, char *detail);
void ngff_local_close(ngff_local *f);

/* Exactly n bytes at `at` (relative to the range start) into dst. */
ngff_status ngff_local_pread(const ngff_local *f, uint8_t *dst, int64_t n, int64_t at,
                             char *detail);

/* For a plain blosc1 frame: reads only the header, the block-start table and the run of
 * blocks holding decoded bytes [lo, hi) into buf (len(range) bytes, the rest left unread).
 * NGFF_ERR_UNSUPPORTED for any other frame shape: read the whole object instead. */
ngff_status ngff_local_read_blosc_blocks(const ngff_local *f, ngff_buffer *buf, size_t lo,
                                         size_t hi, char *detail);

#endif
