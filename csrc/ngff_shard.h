/* Zarr v3 sharding_indexed: parsing and checking a shard index. */
#ifndef NGFF_SHARD_H
#define NGFF_SHARD_H

#include <stdint.h>
#include "ngff_status.h"

/* Bytes one index entry occupies: (offset, nbytes) as two uint64. */
#define NGFF_SHARD_ENTRY_BYTES 16

/* Parses an index of n_inner entries (index bytes already stripped of any crc32c; entries
 * little- or big-endian uint64 pairs). Entries marked empty (both all-ones) give offset -1 and
 * nbytes -1. Every other entry must lie inside [0, shard_len); offsets and nbytes are written
 * to the caller's arrays of n_inner int64. On NGFF_ERR_SHARD_INDEX, *bad_entry is the first
 * offending entry, whose raw offset and nbytes are left in offsets/nbytes[*bad_entry]. */
ngff_status ngff_shard_index_parse(const uint8_t *index, int64_t index_len, int64_t n_inner,
                                   int32_t big_endian, int64_t shard_len, int64_t *offsets,
                                   int64_t *nbytes, int64_t *bad_entry);

#endif
