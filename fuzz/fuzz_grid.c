/*
 * Grid planning and chunk keys (csrc/ngff_grid.h) from metadata-derived parameters: array
 * shape, chunk shape, a box selection, and key formatting.
 *
 * Input (fuzz_common.h reader; tests/fuzz_replay.py parse_grid mirrors it):
 *   u8 ndim % 7
 *   u8 key flags: bit 0 encoding (v2 / default), bit 1 separator ('.' / '/'), bit 2 a raw
 *      separator byte follows, bit 3 a raw encoding byte follows
 *   [u8 separator] [u8 encoding]
 *   ndim x (u8 kind % 4, then shape, chunk, start, stop):
 *     kind 0  shape u16 % 4096, chunk 1 + u16 % 1024, start u16 % (shape + 1),
 *             stop start + u16 % (shape - start + 1)
 *     kind 1  the same with u32 (shape u32, chunk 1 + u32)
 *     kind 2  the same with u64 within int64 (shape u64 % 2**63, chunk 1 + u64 % (2**63 - 1))
 *     kind 3  four raw u64 as int64 (negative, inverted and oversized ones included)
 *   u8 key buffer capacity
 *   ndim x u64 raw chunk coordinates (as int64) for one more key
 * Checks: ngff_grid_count against a 128-bit reference; for at most 4096 chunks, ngff_grid_plan
 * into exactly sized arrays: every box inside its chunk and the selection, boxes in C order
 * of chunk coordinates, chunk-local and output positions agreeing, volumes summing to the
 * selection's; ngff_grid_plan refuses a wrong n; every key (and the raw one) equals a
 * reference formatting, or is refused (-1) exactly when it does not fit the capacity or the
 * arguments are invalid; nothing is written past the capacity.
 */
#include "fuzz_common.h"
#include "ngff_grid.h"

#define MAX_PLAN 4096

typedef __int128 i128;

static void one_dim(fz_in *in, int64_t *shape, int64_t *chunk, int64_t *start, int64_t *stop)
{
    uint64_t s, c, a, b;
    switch (fz_u8(in) % 4) {
    case 0:
        s = fz_u16(in) % 4096;
        c = 1 + fz_u16(in) % 1024;
        a = fz_u16(in) % (s + 1);
        b = a + fz_u16(in) % (s - a + 1);
        break;
    case 1:
        s = fz_u32(in);
        c = 1 + (uint64_t)fz_u32(in);
        a = fz_u32(in) % (s + 1);
        b = a + fz_u32(in) % (s - a + 1);
        break;
    case 2:
        s = fz_u64(in) % ((uint64_t)1 << 63);
        c = 1 + fz_u64(in) % (((uint64_t)1 << 63) - 1);
        a = fz_u64(in) % (s + 1);
        b = a + fz_u64(in) % (s - a + 1);
        break;
    default:
        s = fz_u64(in);
        c = fz_u64(in);
        a = fz_u64(in);
        b = fz_u64(in);
        break;
    }
    *shape = (int64_t)s;
    *chunk = (int64_t)c;
    *start = (int64_t)a;
    *stop = (int64_t)b;
}

/* The reference key, or -1 when the arguments are invalid. */
static int ref_key(int32_t enc, char sep, int32_t ndim, const int64_t *coords, char *buf)
{
    if (sep != '/' && sep != '.')
        return -1;
    if (enc != NGFF_KEY_V2 && enc != NGFF_KEY_DEFAULT)
        return -1;
    int n = 0;
    if (enc == NGFF_KEY_DEFAULT)
        buf[n++] = 'c';
    else if (ndim == 0)
        buf[n++] = '0';
    for (int32_t d = 0; d < ndim; d++) {
        if (coords[d] < 0)
            return -1;
        if (enc == NGFF_KEY_DEFAULT || d > 0)
            buf[n++] = sep;
        n += sprintf(buf + n, "%lld", (long long)coords[d]);
    }
    return n;
}

static void check_key(int32_t enc, char sep, int32_t ndim, const int64_t *coords, size_t cap)
{
    char want[NGFF_MAX_DIMS * 22 + 2];
    int n = ref_key(enc, sep, ndim, coords, want);
    char *buf = malloc(cap ? cap : 1); /* exactly cap bytes: ASan sees any write past it */
    int64_t got = ngff_chunk_key(enc, sep, ndim, coords, buf, cap);
    if (n < 0 || (size_t)n > cap)
        FZ_CHECK(got == -1, "key returned %lld, expected -1 (ref %d, cap %zu)",
                 (long long)got, n, cap);
    else
        FZ_CHECK(got == n && memcmp(buf, want, (size_t)n) == 0, "key %.*s, expected %.*s",
                 (int)(got > 0 ? got : 0), buf, n, want);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int32_t ndim = fz_u8(&in) % 7;
    uint8_t kf = fz_u8(&in);
    int32_t enc = kf & 1 ? NGFF_KEY_DEFAULT : NGFF_KEY_V2;
    char sep = kf & 2 ? '/' : '.';
    if (kf & 4)
        sep = (char)fz_u8(&in);
    if (kf & 8)
        enc = (int8_t)fz_u8(&in);
    int64_t shape[NGFF_MAX_DIMS], chunk[NGFF_MAX_DIMS], start[NGFF_MAX_DIMS],
        stop[NGFF_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++)
        one_dim(&in, &shape[d], &chunk[d], &start[d], &stop[d]);
    size_t cap = fz_u8(&in);
    int64_t raw[NGFF_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++)
        raw[d] = (int64_t)fz_u64(&in);

    /* reference count */
    int valid = 1, empty = 0;
    i128 want = 1, volume = 1;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0 || chunk[d] <= 0 || start[d] < 0 || stop[d] < start[d] ||
            stop[d] > shape[d])
            valid = 0;
    }
    for (int32_t d = 0; d < ndim && valid; d++) {
        if (stop[d] == start[d]) {
            empty = 1;
            continue;
        }
        want *= (i128)((stop[d] - 1) / chunk[d] - start[d] / chunk[d] + 1);
        if (want > INT64_MAX)
            want = (i128)INT64_MAX + 1; /* saturate: overflow */
        volume *= (i128)(stop[d] - start[d]);
        if (volume > INT64_MAX)
            volume = (i128)INT64_MAX + 1;
    }
    int64_t expect = !valid ? -1 : empty ? 0 : want > INT64_MAX ? -1 : (int64_t)want;
    int64_t n = ngff_grid_count(ndim, shape, chunk, start, stop);
    FZ_CHECK(n == expect, "count %lld, expected %lld", (long long)n, (long long)expect);

    if (n >= 1 && n <= MAX_PLAN) {
        size_t nc = (size_t)n * (size_t)ndim;
        int64_t *coords = malloc(nc ? nc * 8 : 1), *boxes = malloc(nc ? 3 * nc * 8 : 1);
        FZ_CHECK(ngff_grid_plan(ndim, shape, chunk, start, stop, n + 1, coords, boxes) ==
                     NGFF_ERR_INVALID_ARGUMENT,
                 "plan accepted a wrong count");
        ngff_status st = ngff_grid_plan(ndim, shape, chunk, start, stop, n, coords, boxes);
        FZ_CHECK(st == NGFF_OK, "plan status %d", st);
        i128 total = 0;
        for (int64_t i = 0; i < n; i++) {
            const int64_t *c = coords + i * ndim, *box = boxes + i * 3 * ndim;
            const int64_t *inner = NGFF_BOX_INNER(box, ndim), *bs = NGFF_BOX_SHAPE(box, ndim),
                          *out = NGFF_BOX_OUT(box, ndim);
            i128 v = 1;
            for (int32_t d = 0; d < ndim; d++) {
                FZ_CHECK(inner[d] >= 0 && bs[d] >= 1 && (i128)inner[d] + bs[d] <= chunk[d],
                         "chunk %lld axis %d: box %lld+%lld outside the chunk of %lld",
                         (long long)i, d, (long long)inner[d], (long long)bs[d],
                         (long long)chunk[d]);
                FZ_CHECK((i128)c[d] * chunk[d] + inner[d] == (i128)start[d] + out[d],
                         "chunk %lld axis %d: positions disagree", (long long)i, d);
                FZ_CHECK(out[d] >= 0 && (i128)out[d] + bs[d] <= (i128)stop[d] - start[d],
                         "chunk %lld axis %d: box outside the selection", (long long)i, d);
                v *= bs[d];
                if (v > INT64_MAX)
                    v = (i128)INT64_MAX + 1; /* saturate (box shapes are each < 2**63) */
            }
            total += v;
            if (total > INT64_MAX)
                total = (i128)INT64_MAX + 1;
            if (i > 0) { /* strictly increasing C order */
                const int64_t *pc = c - ndim;
                int32_t d = 0;
                while (d < ndim && pc[d] == c[d])
                    d++;
                FZ_CHECK(d < ndim && pc[d] < c[d], "chunks out of order at %lld", (long long)i);
            }
        }
        if (volume <= INT64_MAX)
            FZ_CHECK(total == volume, "boxes cover %lld elements of %lld", (long long)total,
                     (long long)volume);
        for (int64_t i = 0; i < n && i < 64; i++)
            check_key(enc, sep, ndim, coords + i * ndim, cap);
        free(coords);
        free(boxes);
    }
    check_key(enc, sep, ndim, raw, cap);
    return 0;
}
