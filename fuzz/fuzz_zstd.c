/* zstd frames through ngff_codec_decode (see fuzz_codec_common.h). */
#include "fuzz_codec_common.h"

size_t ZSTD_compress(void *dst, size_t cap, const void *src, size_t n, int level);
unsigned ZSTD_isError(size_t code);

static void make_good_stream(void)
{
    size_t n = ZSTD_compress(good_enc, sizeof good_enc, good_raw, sizeof good_raw, 3);
    if (ZSTD_isError(n))
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
    fz_codec_one(NGFF_CODEC_ZSTD, data, size);
    return 0;
}
