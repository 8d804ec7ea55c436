/* CRC-32C (Castagnoli), as the Zarr v3 crc32c codec and shard indexes use it. */
#ifndef NGFF_CRC32C_H
#define NGFF_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc of `len` bytes, continuing from `crc` (start with 0). Thread-safe after first use. */
uint32_t ngff_crc32c(uint32_t crc, const uint8_t *data, size_t len);

#endif
