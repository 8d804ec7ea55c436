/* Whole chunks of an unsharded array written as local files in one native call: the write
 * twin of reading by key (ngff_batch with a root). Each chunk is gathered and encoded by
 * ngff_pool_encode (one chunk at a time, on the task's thread), then written to a temporary
 * file beside its key and renamed over it, on the pool. */
#ifndef NGFF_WRITE_FILES_H
#define NGFF_WRITE_FILES_H

#include <stdint.h>

#include "ngff_decode.h"
#include "ngff_fetch.h"
#include "ngff_pool.h"
#include "ngff_status.h"

enum ngff_write_action {
    NGFF_WRITE_FAILED = 0,  /* nothing done for the chunk (see its result) */
    NGFF_WRITE_WRITTEN = 1, /* its file was replaced by the encoded chunk */
    NGFF_WRITE_DELETED = 2, /* all fill value with skip_fill: its file no longer exists */
};

typedef struct ngff_write_files {
    const ngff_pipeline *pipeline;
    const uint8_t *in;                 /* the caller's value: its element at sel_start */
    int64_t in_strides[NGFF_MAX_DIMS]; /* byte strides; may be 0 (broadcast) or negative */
    const int64_t *shape;              /* the array's shape (pipeline->ndim) */
    int64_t n_chunks;
    const int64_t *chunk_coords;       /* n_chunks x ndim, as ngff_grid_plan writes them */
    const int64_t *boxes;              /* n_chunks x 3*ndim, as ngff_grid_plan writes them; each
                                          must cover its chunk's in-array part (else
                                          NGFF_ERR_INVALID_ARGUMENT: no old bytes are merged) */
    const char *root;                  /* directory path ending in '/': chunk i is the file
                                          root + its key */
    int32_t key_encoding;              /* enum ngff_key_encoding */
    char key_separator;
    const ngff_root *confine;          /* files are created beneath it (root must start with its
                                          path); NULL: anywhere */
    int32_t skip_fill;                 /* an all-fill chunk is deleted instead of written */
    int32_t fsync;                     /* flush each file, then its directory after the rename */
    ngff_chunk_result *results;        /* n_chunks, written */
    uint8_t *actions;                  /* n_chunks, written: enum ngff_write_action */
    int64_t *nbytes;                   /* n_chunks, written: the file's size (0 unless written) */
} ngff_write_files;

/* Writes every chunk of `w` on the pool (and the calling thread); many threads may call it at
 * once (on disjoint chunks: two writers of one key race, the last rename wins). Each file is
 * written whole or not at all: a temporary "." + <last key component> + "." + 16 hex digits +
 * ".partial" in the key's directory (created O_EXCL, mode 0666 & ~umask; missing directories
 * are created), renamed over the key; on failure it is unlinked. NGFF_OK, or the status of
 * the lowest-numbered failed chunk (its index in *first_failed; -1 when the call itself is
 * invalid). Never touches Python. */
ngff_status ngff_pool_write_files(ngff_pool *pool, const ngff_write_files *w,
                                  int64_t *first_failed);

#endif
