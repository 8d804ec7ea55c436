/*
 * The stream codecs (zstd, zlib/gzip, LZ4) share one harness body: see fuzz_zstd.c,
 * fuzz_zlib.c, fuzz_lz4.c. Input: the encoded bytes, nothing else. Expected size, derived:
 *   - the size the stream records (ngff_codec_decoded_size: LZ4 prefix, zstd frame header),
 *     capped at CAP (larger claims take the mismatch path);
 *   - otherwise (zlib, gzip, zstd frames without a size) a probe decode into CAP bytes, and
 *     when it reports "decoded N bytes" the real decode with N and then with N - 1 (the
 *     "decodes to more than" path).
 * The input sits at the end of a guarded buffer, and every decode goes into a guarded buffer
 * of exactly `expected` bytes (fuzz_common.h: the libraries are uninstrumented). After each input a
 * known-good stream decodes correctly with the same context (no state may leak).
 */
#ifndef FUZZ_CODEC_COMMON_H
#define FUZZ_CODEC_COMMON_H

#include "fuzz_common.h"
#include "ngff_codecs.h"

#define CAP (1u << 20)

static ngff_codec_ctx *ctx;
static fz_arena out, in_arena;
static uint8_t good_raw[4096], good_enc[8192];
static size_t good_len;

/* Fills good_enc/good_len with good_raw encoded by the codec under test. */
static void make_good_stream(void);

static void fz_codec_init(void)
{
    ctx = ngff_codec_ctx_create();
    if (!ctx)
        abort();
    fz_arena_init(&out, CAP);
    fz_arena_init(&in_arena, CAP);
    for (size_t i = 0; i < sizeof good_raw; i++)
        good_raw[i] = (uint8_t)(i * 7 / 5 + (i % 13 == 0));
    make_good_stream();
}

static ngff_status fz_decode(int32_t codec, const uint8_t *data, size_t size, size_t expected,
                             char *detail)
{
    uint8_t *dst = fz_arena_get(&out, expected);
    detail[0] = 0;
    ngff_status st = ngff_codec_decode(ctx, codec, data, size, dst, expected, detail);
    FZ_CHECK(st >= NGFF_OK && st < NGFF_STATUS_COUNT, "status %d", st);
    FZ_CHECK(memchr(detail, 0, NGFF_DETAIL_CAP), "detail not terminated");
    return st;
}

/* "...decoded N bytes..." in a size-mismatch message: N, or -1. */
static long long fz_decoded_count(const char *detail)
{
    const char *s = strstr(detail, "decoded ");
    char *end;
    if (!s)
        return -1;
    long long n = strtoll(s + 8, &end, 10);
    return end != s + 8 && n >= 0 ? n : -1;
}

static void fz_codec_one(int32_t codec, const uint8_t *input, size_t size)
{
    const uint8_t *data = fz_arena_put(&in_arena, input, size);
    if (!data)
        return;
    char detail[NGFF_DETAIL_CAP];
    int64_t declared = 0;
    ngff_status st = ngff_codec_decoded_size(codec, data, size, &declared, detail);
    if (st == NGFF_OK) {
        fz_decode(codec, data, size, declared > CAP ? CAP : (size_t)declared, detail);
    } else {
        st = fz_decode(codec, data, size, CAP, detail);
        long long n = st == NGFF_ERR_SIZE_MISMATCH ? fz_decoded_count(detail) : -1;
        if (n >= 0 && n < CAP) {
            st = fz_decode(codec, data, size, (size_t)n, detail);
            if (n > 0)
                fz_decode(codec, data, size, (size_t)n - 1, detail);
        }
    }
    st = fz_decode(codec, good_enc, good_len, sizeof good_raw, detail);
    FZ_CHECK(st == NGFF_OK && memcmp(fz_arena_get(&out, sizeof good_raw), good_raw,
                                     sizeof good_raw) == 0,
             "valid stream after this input: status %d %s", st, detail);
}

#endif
