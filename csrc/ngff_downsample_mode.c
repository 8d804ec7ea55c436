/* Mode kernels of ngff_downsample.c (split off to keep files short): the most frequent value
 * of each block, the smallest on ties, for integer and bool data. */
#include "ngff_downsample_impl.h"

#include <stdlib.h>

#define LD(T, p) ({ T v_; memcpy(&v_, (p), sizeof(T)); v_; })
#define LD_T(T, p) LD(T, p)
#define LD_B(T, p) ((uint8_t)(*(const uint8_t *)(p) != 0))

/* ---------------------------------------------------------------------------------------
 * Mode: the most frequent value of a block, the smallest on ties.
 * --------------------------------------------------------------------------------------- */

#define DEF_MODE(NAME, T, LOAD)                                                                 \
    static int cmp_##NAME(const void *a, const void *b)                                         \
    {                                                                                           \
        T x = *(const T *)a, y = *(const T *)b;                                                 \
        return (x > y) - (x < y);                                                               \
    }                                                                                           \
    /* vals: scratch for one block; rows: the block's input rows (nrows of them) */             \
    static void mode_##NAME(const uint8_t *const *rows, int64_t nrows, int64_t s, int64_t f,    \
                            int64_t nx, int64_t last_w, void *vals_, uint8_t *out, int64_t os)  \
    {                                                                                           \
        T *vals = vals_;                                                                        \
        for (int64_t o = 0; o < nx; o++) {                                                      \
            int64_t w = o == nx - 1 ? last_w : f, n = 0;                                        \
            for (int64_t k = 0; k < nrows; k++) {                                               \
                const uint8_t *q = rows[k] + o * f * s;                                         \
                for (int64_t i = 0; i < w; i++)                                                 \
                    vals[n++] = LOAD(T, q + i * s);                                             \
            }                                                                                   \
            if (n <= 64) { /* insertion sort: the usual 4 or 8 values */                        \
                for (int64_t i = 1; i < n; i++) {                                               \
                    T v = vals[i];                                                              \
                    int64_t j = i;                                                              \
                    for (; j > 0 && vals[j - 1] > v; j--)                                       \
                        vals[j] = vals[j - 1];                                                  \
                    vals[j] = v;                                                                \
                }                                                                               \
            } else {                                                                            \
                qsort(vals, (size_t)n, sizeof(T), cmp_##NAME);                                  \
            }                                                                                   \
            T best = vals[0];                                                                   \
            int64_t best_n = 0;                                                                 \
            for (int64_t i = 0; i < n;) {                                                       \
                int64_t j = i + 1;                                                              \
                while (j < n && vals[j] == vals[i])                                             \
                    j++;                                                                        \
                if (j - i > best_n) { /* strictly more: ties keep the smaller */                \
                    best_n = j - i;                                                             \
                    best = vals[i];                                                             \
                }                                                                               \
                i = j;                                                                          \
            }                                                                                   \
            memcpy(out + o * os, &best, sizeof(T));                                             \
        }                                                                                       \
    }
DEF_MODE(b, uint8_t, LD_B)
DEF_MODE(i8, int8_t, LD_T)
DEF_MODE(u8, uint8_t, LD_T)
DEF_MODE(i16, int16_t, LD_T)
DEF_MODE(u16, uint16_t, LD_T)
DEF_MODE(i32, int32_t, LD_T)
DEF_MODE(u32, uint32_t, LD_T)
DEF_MODE(i64, int64_t, LD_T)
DEF_MODE(u64, uint64_t, LD_T)

typedef void (*mode_fn)(const uint8_t *const *, int64_t, int64_t, int64_t, int64_t, int64_t, void *,
                        uint8_t *, int64_t);
static const mode_fn MODE_FNS[NGFF_DS_FLOAT16] = {mode_b, mode_i8, mode_u8, mode_i16, mode_u16,
                                                 mode_i32, mode_u32, mode_i64, mode_u64};

void ngff_ds_mode_row(int32_t dtype, const uint8_t *const *rows, int64_t nrows, int64_t s, int64_t f,
                      int64_t nx, int64_t last_w, void *vals, uint8_t *out, int64_t os)
{
    MODE_FNS[dtype](rows, nrows, s, f, nx, last_w, vals, out, os);
}
