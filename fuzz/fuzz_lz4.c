/* numcodecs LZ4 chunks (4-byte little-endian size, then an LZ4 block) through
 * ngff_codec_decode (see fuzz_codec_common.h). */
#include "fuzz_codec_common.h"

int LZ4_compress_default(const char *src, char *dst, int src_size, int dst_cap);

static void make_good_stream(void)
{
    int n = LZ4_compress_default((const char *)good_raw, (char *)good_enc + 4,
                                 (int)sizeof good_raw, (int)sizeof good_enc - 4);
    if (n <= 0)
        abort();
    uint32_t len = sizeof good_raw;
    for (int k = 0; k < 4; k++)
        good_enc[k] = (uint8_t)(len >> (8 * k));
    good_len = (size_t)n + 4;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_codec_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_codec_one(NGFF_CODEC_LZ4, data, size);
    return 0;
}
