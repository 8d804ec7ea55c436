#include "ngff_status.h"

static const char *const status_messages[NGFF_STATUS_COUNT] = {
    [NGFF_OK] = "ok",
    [NGFF_ERR_NOMEM] = "out of memory",
    [NGFF_ERR_INVALID_ARGUMENT] = "invalid argument",
    [NGFF_ERR_TRUNCATED] = "data is truncated",
    [NGFF_ERR_CORRUPT] = "data is corrupt",
    [NGFF_ERR_SIZE_MISMATCH] = "decoded size does not match the chunk size",
    [NGFF_ERR_CHECKSUM] = "checksum mismatch",
    [NGFF_ERR_SHARD_INDEX] = "invalid shard index",
    [NGFF_ERR_UNSUPPORTED] = "unsupported encoding",
    [NGFF_ERR_IO] = "I/O error",
    [NGFF_ERR_OVERFLOW] = "size overflows 64 bits",
};

const char *ngff_status_message(int status)
{
    if (status < 0 || status >= NGFF_STATUS_COUNT || status_messages[status] == 0)
        return "unknown status";
    return status_messages[status];
}
