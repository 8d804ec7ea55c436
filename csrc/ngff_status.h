/* Status codes of the ngffcore C core and their messages: the one table. */
#ifndef NGFF_STATUS_H
#define NGFF_STATUS_H

typedef enum ngff_status {
    NGFF_OK = 0,
    NGFF_ERR_NOMEM,            /* an allocation failed */
    NGFF_ERR_INVALID_ARGUMENT, /* the caller's plan is inconsistent (a bug, not bad data) */
    NGFF_ERR_TRUNCATED,        /* input shorter than a header or length says */
    NGFF_ERR_CORRUPT,          /* a codec library rejected the data */
    NGFF_ERR_SIZE_MISMATCH,    /* decoded size differs from the chunk's size */
    NGFF_ERR_CHECKSUM,         /* crc32c mismatch */
    NGFF_ERR_SHARD_INDEX,      /* a shard index entry lies outside the shard or is malformed */
    NGFF_ERR_UNSUPPORTED,      /* well-formed data this core does not decode */
    NGFF_ERR_IO,               /* reading a local file failed */
    NGFF_ERR_OVERFLOW,         /* a size computation would overflow */
    NGFF_STATUS_COUNT
} ngff_status;

/* Static, never NULL (unknown codes give a generic message). */
const char *ngff_status_message(int status);

#endif
