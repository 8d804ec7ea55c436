/*
 * Shard index parsing (csrc/ngff_shard.h), as the sharding_indexed codec stores the index:
 * n_inner (offset, nbytes) uint64 pairs, little- or big-endian, usually followed by a
 * CRC-32C.
 *
 * Input (fuzz_common.h reader; tests/fuzz_replay.py parse_shard mirrors it):
 *   u8 flags: bit 0 big-endian; bit 1 the index ends in a crc32c, checked and stripped
 *             first as ngffcore.shard does (cut off even when wrong: the parser is what is
 *             fuzzed); bit 2 n_inner from the input (else from the index length); bits 3-4
 *             shard length kind
 *   u16 n_inner % 4097 (bit 2 set), else index length / 16 + (u16 % 3) - 1 (>= 0)
 *   u64 shard length: kind 0 index length + u64 % 2**20, 1 u64 % 2**16, 2 and 3 the u64 as
 *       int64 (negative and huge included)
 *   payload: the index
 * Checks: the status follows the documented rules (length against 16 * n_inner first, then
 * every entry), empty entries read -1/-1, every accepted entry lies in [0, shard length),
 * the reported bad entry is the first that does not.
 */
#include "fuzz_common.h"
#include "ngff_codecs.h"
#include "ngff_shard.h"

static uint64_t load64(const uint8_t *p, int big)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[big ? 7 - k : k] << (8 * k);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    int big = flags & 1, crc = flags >> 1 & 1, given = flags >> 2 & 1, kind = flags >> 3 & 3;
    uint16_t n16 = fz_u16(&in);
    uint64_t raw_len = fz_u64(&in);
    size_t index_len = in.n;
    uint8_t *index = malloc(index_len ? index_len : 1); /* exact size for ASan */
    if (index_len)
        memcpy(index, in.p, index_len);
    if (crc) {
        char detail[NGFF_DETAIL_CAP];
        size_t payload;
        /* a bad checksum stops ngffcore.shard, but the parser is what is fuzzed here */
        if (ngff_crc32c_strip(index, index_len, &payload, detail) == NGFF_OK)
            index_len = payload;
        else if (index_len >= 4)
            index_len -= 4;
    }
    int64_t n_inner = given ? n16 % 4097 : (int64_t)(index_len / 16) + n16 % 3 - 1;
    if (n_inner < 0)
        n_inner = 0;
    int64_t shard_len = kind == 0   ? (int64_t)index_len + (int64_t)(raw_len % (1u << 20))
                        : kind == 1 ? (int64_t)(raw_len % (1u << 16))
                                    : (int64_t)raw_len;
    int64_t *offsets = n_inner ? malloc((size_t)n_inner * 8) : NULL;
    int64_t *nbytes = n_inner ? malloc((size_t)n_inner * 8) : NULL;
    int64_t bad = -2;
    ngff_status st = ngff_shard_index_parse(index_len ? index : NULL, (int64_t)index_len,
                                            n_inner, big, shard_len, offsets, nbytes, &bad);
    if (shard_len < 0) {
        FZ_CHECK(st == NGFF_ERR_INVALID_ARGUMENT, "negative shard length: status %d", st);
    } else if ((int64_t)index_len < 16 * n_inner) {
        FZ_CHECK(st == NGFF_ERR_TRUNCATED && bad == -1, "short index: status %d", st);
    } else if ((int64_t)index_len > 16 * n_inner) {
        FZ_CHECK(st == NGFF_ERR_SHARD_INDEX && bad == -1, "long index: status %d", st);
    } else {
        int64_t first_bad = -1;
        for (int64_t i = 0; i < n_inner && first_bad < 0; i++) {
            uint64_t off = load64(index + 16 * i, big), len = load64(index + 16 * i + 8, big);
            if (off == UINT64_MAX && len == UINT64_MAX) {
                FZ_CHECK(offsets[i] == -1 && nbytes[i] == -1, "empty entry %lld", (long long)i);
                continue;
            }
            if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX ||
                off + len > (uint64_t)shard_len || off + len < off) {
                first_bad = i;
                break;
            }
            FZ_CHECK(offsets[i] == (int64_t)off && nbytes[i] == (int64_t)len,
                     "entry %lld parsed wrong", (long long)i);
        }
        FZ_CHECK(first_bad < 0 ? st == NGFF_OK && bad == -1
                               : st == NGFF_ERR_SHARD_INDEX && bad == first_bad,
                 "status %d bad %lld, expected bad %lld", st, (long long)bad,
                 (long long)first_bad);
        if (st == NGFF_OK)
            for (int64_t i = 0; i < n_inner; i++)
                FZ_CHECK((offsets[i] == -1 && nbytes[i] == -1) ||
                             (offsets[i] >= 0 && nbytes[i] >= 0 &&
                              offsets[i] + nbytes[i] <= shard_len),
                         "entry %lld outside the shard", (long long)i);
    }
    free(offsets);
    free(nbytes);
    free(index);
    return 0;
}
