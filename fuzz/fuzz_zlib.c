/* zlib and gzip streams (one codec id, auto-detected) through ngff_codec_decode (see
 * fuzz_codec_common.h). */
#include "fuzz_codec_common.h"

int32_t zng_compress(uint8_t *dst, size_t *dst_len, const uint8_t *src, size_t src_len);

static void make_good_stream(void)
{
    size_t n = sizeof good_enc;
    if (zng_compress(good_enc, &n, good_raw, sizeof good_raw) != 0)
        abort();
    good_len = n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_codec_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_codec_one(NGFF_CODEC_ZLIB, data, size);
    return 0;
}
