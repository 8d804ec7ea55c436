/*
 * One chunk through the batch API (csrc/ngff_decode.h, ngff_pool.h): a pipeline and a box
 * from the first input bytes, the rest is the encoded chunk. Reaches every decode path: the
 * direct decode into the output, blosc block by block, blosc partial (getitem) decodes, the
 * partial blosc1 read from a file (memfd), codec chains with crc32c, delta, byte swaps,
 * transposed chunks, fill values for missing chunks.
 *
 * Input (fuzz_common.h reader; tests/fuzz_replay.py parse_pipeline mirrors it):
 *   u8 ndim % 5 | u8 1 + itemsize % 16 | u8 byteswap % 3 (0 if it does not divide itemsize)
 *   u8 delta % 4, bit 2 delta_swap (delta 0 unless itemsize 1/2/4/8; float needs 4/8)
 *   u8 n_codecs % 4, then n_codecs x u8 (1 + codec % 5), in encode order
 *   ndim x u8 chunk shape 1 + b % 64 (inputs whose chunk exceeds 64 KiB are skipped)
 *   u8 permutation index of the stored (decoded) axis order (transpose / F order)
 *   itemsize x u8 fill value
 *   u8 flags: bit 0 the box is the whole chunk
 *   ndim x (u8 box start % chunk, u8 1 + box size % (chunk - start))
 *   ndim x (u8 padding % 4, u8 box position % (padding + 1)): output = box + padding
 *   u8 permutation index of the output's memory axis order, u8 bits: output axes reversed
 *   u8 source % 4: 0 missing, 1 or 3 memory, 2 local file (the payload in a memfd)
 *   payload: the encoded chunk
 *
 * Checks besides the sanitizers: bytes of the output outside the box are never written; the
 * box equals a reference (the codec chain decoded whole, one codec at a time, delta undone,
 * elements gathered one by one) whenever both succeed; a failure where the reference
 * succeeds, or a success where it fails, is reported unless the chunk's last decode is
 * blosc (partial decodes need not read the blocks a corrupt frame spoils).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>

#include "fuzz_common.h"
#include "ngff_decode.h"
#include "ngff_pool.h"

#define MAX_CHUNK (64 * 1024)
#define OUT_CAP (4u << 20)
#define REF_CAP (4u << 20)

static ngff_pool *pool;
static ngff_codec_ctx *ref_ctx;
static fz_arena out_arena, in_arena;
static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    pool = ngff_pool_create(1);
    ref_ctx = ngff_codec_ctx_create();
    if (!pool || !ref_ctx)
        abort();
    fz_arena_init(&out_arena, OUT_CAP);
    fz_arena_init(&in_arena, 1u << 20);
    memfd = memfd_create("ngff-fuzz-chunk", 0);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

/* The k-th permutation (Lehmer code) of 0..n-1. */
static void nth_perm(int32_t n, uint32_t k, int32_t *perm)
{
    int32_t items[NGFF_MAX_DIMS];
    uint32_t fact = 1;
    for (int32_t i = 0; i < n; i++) {
        items[i] = i;
        fact *= (uint32_t)(i + 1);
    }
    k %= fact;
    for (int32_t i = 0; i < n; i++) {
        fact /= (uint32_t)(n - i);
        uint32_t j = k / fact;
        k %= fact;
        perm[i] = items[j];
        for (int32_t m = (int32_t)j; m < n - i - 1; m++)
            items[m] = items[m + 1];
    }
}

/* C-order byte strides of `shape` laid out in memory in axis order `perm`. */
static int64_t perm_strides(int32_t n, const int64_t *shape, const int32_t *perm,
                            int64_t itemsize, int64_t *strides)
{
    int64_t s = itemsize;
    for (int32_t i = n - 1; i >= 0; i--) {
        strides[perm[i]] = s;
        s *= shape[perm[i]];
    }
    return s; /* total bytes */
}

typedef struct ref_result {
    int ok;
    uint8_t *data; /* chunk_nbytes decoded bytes, delta undone (malloc'd) */
} ref_result;

static ref_result reference(const ngff_pipeline *p, const uint8_t *src, size_t len)
{
    ref_result r = {0, NULL};
    char detail[NGFF_DETAIL_CAP];
    uint8_t *own = NULL;
    const uint8_t *cur = src;
    for (int32_t k = p->n_codecs - 1; k >= 0; k--) {
        int32_t codec = p->codecs[k];
        if (codec == NGFF_CODEC_CRC32C) {
            if (ngff_crc32c_strip(cur, len, &len, detail) != NGFF_OK)
                goto done;
            continue;
        }
        int final = 1, crcs = 0;
        for (int32_t j = 0; j < k; j++) {
            if (p->codecs[j] == NGFF_CODEC_CRC32C)
                crcs++;
            else
                final = 0;
        }
        size_t expected;
        if (final) {
            expected = (size_t)p->chunk_nbytes + 4 * (size_t)crcs;
        } else {
            int64_t size;
            /* the core's rule: no more than codecs[0..k-1] could make of the chunk
             * (n + n/2 + 64 KiB per compressor, 4 per crc32c) */
            uint64_t bound = (uint64_t)p->chunk_nbytes;
            for (int32_t j = 0; j < k; j++)
                bound += p->codecs[j] == NGFF_CODEC_CRC32C ? 4 : bound / 2 + 65536;
            if (ngff_codec_decoded_size(codec, cur, len, &size, detail) != NGFF_OK ||
                (uint64_t)size > bound || size > REF_CAP)
                goto done;
            expected = (size_t)size;
        }
        uint8_t *next = malloc(expected ? expected : 1);
        if (ngff_codec_decode(ref_ctx, codec, cur, len, next, expected, detail) != NGFF_OK) {
            free(next);
            goto done;
        }
        free(own);
        own = next;
        cur = own;
        len = expected;
    }
    if (len != (size_t)p->chunk_nbytes)
        goto done;
    r.data = malloc(len ? len : 1);
    memcpy(r.data, cur, len);
    if (p->delta != NGFF_DELTA_NONE) {
        int64_t n = p->chunk_nbytes / p->itemsize, is = p->itemsize;
        uint8_t acc[8] = {0}, v[8];
        double facc = 0;
        float ffacc = 0;
        for (int64_t i = 0; i < n; i++) {
            uint8_t *e = r.data + i * is;
            for (int64_t b = 0; b < is; b++) /* to native order */
                v[b] = p->delta_swap ? e[is - 1 - b] : e[b];
            if (p->delta == NGFF_DELTA_FLOAT && is == 8) {
                double x;
                memcpy(&x, v, 8);
                facc = facc + x;
                memcpy(v, &facc, 8);
            } else if (p->delta == NGFF_DELTA_FLOAT) {
                float x;
                memcpy(&x, v, 4);
                ffacc = ffacc + x;
                memcpy(v, &ffacc, 4);
            } else { /* little-endian host: add with carry, wrapping */
                unsigned carry = 0;
                for (int64_t b = 0; b < is; b++) {
                    unsigned s = (unsigned)acc[b] + v[b] + carry;
                    acc[b] = (uint8_t)s;
                    carry = s >> 8;
                }
                memcpy(v, acc, (size_t)is);
            }
            for (int64_t b = 0; b < is; b++)
                e[b] = p->delta_swap ? v[is - 1 - b] : v[b];
        }
    }
    r.ok = 1;
done:
    free(own);
    return r;
}

static uint8_t canary(size_t i) { return (uint8_t)(0x5A + i * 31); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    ngff_pipeline p;
    memset(&p, 0, sizeof p);
    p.ndim = fz_u8(&in) % 5;
    p.itemsize = 1 + fz_u8(&in) % 16;
    p.byteswap = fz_u8(&in) % 3;
    if (p.byteswap && p.itemsize % p.byteswap)
        p.byteswap = 0;
    uint8_t b = fz_u8(&in);
    p.delta = b % 4;
    p.delta_swap = (b >> 2) & 1;
    if (p.itemsize != 1 && p.itemsize != 2 && p.itemsize != 4 && p.itemsize != 8)
        p.delta = NGFF_DELTA_NONE;
    if (p.delta == NGFF_DELTA_FLOAT && p.itemsize != 4 && p.itemsize != 8)
        p.delta = NGFF_DELTA_INT;
    p.n_codecs = fz_u8(&in) % 4;
    for (int32_t k = 0; k < p.n_codecs; k++)
        p.codecs[k] = 1 + fz_u8(&in) % 5;
    const int32_t ndim = p.ndim;
    int64_t nbytes = p.itemsize;
    for (int32_t d = 0; d < ndim; d++) {
        p.chunk_shape[d] = 1 + fz_u8(&in) % 64;
        nbytes *= p.chunk_shape[d];
    }
    int32_t perm[NGFF_MAX_DIMS];
    nth_perm(ndim, fz_u8(&in), perm);
    perm_strides(ndim, p.chunk_shape, perm, p.itemsize, p.chunk_strides);
    for (int32_t k = 0; k < p.itemsize; k++)
        p.fill_value[k] = fz_u8(&in);
    int full = fz_u8(&in) & 1;
    int64_t inner[NGFF_MAX_DIMS], bshape[NGFF_MAX_DIMS], at[NGFF_MAX_DIMS],
        oshape[NGFF_MAX_DIMS], ostrides[NGFF_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++) {
        inner[d] = fz_u8(&in) % p.chunk_shape[d];
        bshape[d] = 1 + fz_u8(&in) % (p.chunk_shape[d] - inner[d]);
        if (full) {
            inner[d] = 0;
            bshape[d] = p.chunk_shape[d];
        }
    }
    for (int32_t d = 0; d < ndim; d++) {
        int64_t pad = fz_u8(&in) % 4;
        at[d] = fz_u8(&in) % (pad + 1);
        oshape[d] = bshape[d] + pad;
    }
    int32_t operm[NGFF_MAX_DIMS];
    nth_perm(ndim, fz_u8(&in), operm);
    uint8_t flips = fz_u8(&in);
    int source = fz_u8(&in) % 4;
    size_t payload_len = in.n;
    if (nbytes > MAX_CHUNK)
        return 0;
    /* the encoded chunk ends at a guard page; the core must never write it */
    const uint8_t *payload = fz_arena_put(&in_arena, in.p, payload_len);
    if (!payload)
        return 0;
    if (ngff_pipeline_init(&p) != NGFF_OK)
        abort(); /* the choices above always make a valid pipeline */

    /* the output: exactly its bytes, ending at a guard page, pre-filled with a pattern */
    int64_t out_bytes = perm_strides(ndim, oshape, operm, p.itemsize, ostrides);
    uint8_t *obuf = fz_arena_get(&out_arena, (size_t)out_bytes);
    if (!obuf)
        return 0;
    for (int64_t i = 0; i < out_bytes; i++)
        obuf[i] = canary((size_t)i);
    uint8_t *origin = obuf; /* output element (0, ..., 0) */
    for (int32_t d = 0; d < ndim; d++)
        if (flips >> d & 1) {
            origin += (oshape[d] - 1) * ostrides[d];
            ostrides[d] = -ostrides[d];
        }

    int64_t box[3 * NGFF_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++) {
        box[d] = inner[d];
        box[ndim + d] = bshape[d];
        box[2 * ndim + d] = at[d];
    }
    ngff_source src = {.kind = NGFF_SOURCE_MEMORY, .data = payload, .len = (int64_t)payload_len};
    if (source == 0) {
        src = (ngff_source){.kind = NGFF_SOURCE_MISSING};
    } else if (source == 2) {
        if (ftruncate(memfd, 0) != 0 ||
            pwrite(memfd, payload, payload_len, 0) != (ssize_t)payload_len)
            abort();
        src = (ngff_source){.kind = NGFF_SOURCE_FILE, .path = memfd_path, .offset = 0, .len = -1};
    }
    ngff_chunk_result res;
    ngff_batch batch = {.pipeline = &p, .out = origin, .n_chunks = 1, .boxes = box,
                        .sources = &src, .results = &res};
    memcpy(batch.out_strides, ostrides, sizeof batch.out_strides);
    int64_t failed = -1;
    ngff_status st = ngff_pool_run(pool, &batch, &failed);
    FZ_CHECK(st >= NGFF_OK && st < NGFF_STATUS_COUNT, "status %d", st);
    FZ_CHECK(st == NGFF_OK ? failed < 0 : failed == 0, "status %d failed %lld", st,
             (long long)failed);
    FZ_CHECK(res.status == (int32_t)st && memchr(res.detail, 0, NGFF_DETAIL_CAP), "result");
    FZ_CHECK(st != NGFF_ERR_INVALID_ARGUMENT, "a valid batch was rejected: %s", res.detail);

    FZ_CHECK(payload_len == 0 || memcmp(payload, in.p, payload_len) == 0,
             "the core wrote into the encoded chunk");

    /* reference */
    ref_result ref = {0, NULL};
    if (source != 0)
        ref = reference(&p, payload, payload_len);
    int blosc_last = p.n_codecs > 0 && p.codecs[0] == NGFF_CODEC_BLOSC;
    if (source != 0 && !blosc_last)
        FZ_CHECK((st == NGFF_OK) == ref.ok, "core status %d (%s), reference %s", st,
                 res.detail, ref.ok ? "decodes" : "fails");
    if (source != 0 && blosc_last)
        FZ_CHECK(st == NGFF_OK || !ref.ok || st == NGFF_ERR_NOMEM,
                 "core status %d (%s) but a full decode succeeds", st, res.detail);

    /* walk every output element: outside the box untouched, inside the expected bytes */
    int64_t idx[NGFF_MAX_DIMS] = {0};
    int64_t n_out = out_bytes / p.itemsize;
    for (int64_t e = 0; e < n_out; e++) {
        uint8_t *o = origin;
        int inside = 1;
        int64_t soff = 0;
        for (int32_t d = 0; d < ndim; d++) {
            o += idx[d] * ostrides[d];
            if (idx[d] < at[d] || idx[d] >= at[d] + bshape[d])
                inside = 0;
            else
                soff += (inner[d] + idx[d] - at[d]) * p.chunk_strides[d];
        }
        size_t pos = (size_t)(o - obuf);
        if (!inside) {
            for (int32_t k = 0; k < p.itemsize; k++)
                FZ_CHECK(o[k] == canary(pos + (size_t)k), "byte %zu outside the box was written",
                         pos + (size_t)k);
        } else if (st == NGFF_OK && (source == 0 || ref.ok)) {
            /* (a failed chunk may leave its box partly written) */
            uint8_t want[16];
            const uint8_t *w = source == 0 ? p.fill_value : ref.data + soff;
            memcpy(want, w, (size_t)p.itemsize);
            if (source != 0 && p.byteswap) {
                int32_t part = p.itemsize / p.byteswap;
                for (int32_t c = 0; c < p.byteswap; c++)
                    for (int32_t k = 0; k < part; k++)
                        want[c * part + k] = w[c * part + part - 1 - k];
            }
            FZ_CHECK(memcmp(o, want, (size_t)p.itemsize) == 0,
                     "element %lld of the output differs from the reference", (long long)e);
        }
        for (int32_t d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < oshape[d])
                break;
            idx[d] = 0;
        }
    }
    free(ref.data);
    return 0;
}
