#include "ngff_shard.h"

static uint64_t load_u64(const uint8_t *p, int32_t big_endian)
{
    uint64_t v = 0;
    if (big_endian)
        for (int k = 0; k < 8; k++)
            v = (v << 8) | p[k];
    else
        for (int k = 7; k >= 0; k--)
            v = (v << 8) | p[k];
    return v;
}

ngff_status ngff_shard_index_parse(const uint8_t *index, int64_t index_len, int64_t n_inner,
                                   int32_t big_endian, int64_t shard_len, int64_t *offsets,
                                   int64_t *nbytes, int64_t *bad_entry)
{
    int64_t need;
    *bad_entry = -1;
    if (n_inner < 0 || shard_len < 0 || index_len < 0)
        return NGFF_ERR_INVALID_ARGUMENT;
    if (__builtin_mul_overflow(n_inner, (int64_t)NGFF_SHARD_ENTRY_BYTES, &need))
        return NGFF_ERR_OVERFLOW;
    if (index_len < need)
        return NGFF_ERR_TRUNCATED;
    if (index_len > need)
        return NGFF_ERR_SHARD_INDEX;
    for (int64_t i = 0; i < n_inner; i++) {
        const uint8_t *entry = index + i * NGFF_SHARD_ENTRY_BYTES;
        uint64_t off = load_u64(entry, big_endian);
        uint64_t len = load_u64(entry + 8, big_endian);
        if (off == UINT64_MAX && len == UINT64_MAX) {
            offsets[i] = -1;
            nbytes[i] = -1;
            continue;
        }
        uint64_t end;
        if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX ||
            __builtin_add_overflow(off, len, &end) || end > (uint64_t)shard_len) {
            *bad_entry = i;
            offsets[i] = (int64_t)(off > (uint64_t)INT64_MAX ? INT64_MAX : off);
            nbytes[i] = (int64_t)(len > (uint64_t)INT64_MAX ? INT64_MAX : len);
            return NGFF_ERR_SHARD_INDEX;
        }
        offsets[i] = (int64_t)off;
        nbytes[i] = (int64_t)len;
    }
    return NGFF_OK;
}
