/*
 * ngff_crc32c_strip and ngff_crc32c. Input: a payload with (perhaps) its CRC-32C appended,
 * as the Zarr v3 crc32c codec writes it. Checks: the strip succeeds exactly when the last
 * four bytes are the little-endian CRC-32C of the rest, computed here bit by bit; the crc of
 * the whole input continued across a split point (chosen by a hash) equals the crc in one go.
 */
#include "fuzz_common.h"
#include "ngff_codecs.h"
#include "ngff_crc32c.h"

static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
    }
    return ~c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exactly sized heap copy, so ASan sees any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    char detail[NGFF_DETAIL_CAP];
    size_t payload = (size_t)-1;
    ngff_status st = ngff_crc32c_strip(size ? buf : NULL, size, &payload, detail);
    if (size < 4) {
        FZ_CHECK(st == NGFF_ERR_TRUNCATED, "status %d for %zu bytes", st, size);
    } else {
        uint32_t want = crc_bitwise(buf, size - 4);
        uint32_t stored = (uint32_t)buf[size - 4] | (uint32_t)buf[size - 3] << 8 |
                          (uint32_t)buf[size - 2] << 16 | (uint32_t)buf[size - 1] << 24;
        FZ_CHECK((st == NGFF_OK) == (stored == want), "status %d stored %08x want %08x", st,
                 stored, want);
        FZ_CHECK(st != NGFF_OK || payload == size - 4, "payload %zu", payload);
        FZ_CHECK(st == NGFF_OK || st == NGFF_ERR_CHECKSUM, "status %d", st);
    }
    uint32_t whole = ngff_crc32c(0, size ? buf : NULL, size);
    FZ_CHECK(whole == crc_bitwise(buf, size), "crc32c differs from the bitwise reference");
    size_t cut = size ? (size_t)(fz_hash(buf, size) % (size + 1)) : 0;
    uint32_t split = ngff_crc32c(ngff_crc32c(0, buf, cut), buf + cut, size - cut);
    FZ_CHECK(split == whole, "crc32c continued at %zu differs", cut);
    free(buf);
    return 0;
}
