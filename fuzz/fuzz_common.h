/*
 * Shared pieces of the libFuzzer harnesses (fuzz/fuzz_*.c): an input reader, guarded
 * buffers and small helpers. Header-only; every harness includes it once.
 *
 * Input reader: parameters are taken from the front of the input, one byte at a time
 * (multi-byte values little-endian); once the input is used up every read gives 0. What is
 * left is the payload. tests/fuzz_replay.py mirrors this exactly (class Reader), so a crash
 * input found here replays through the Python API: keep the two in step.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define FZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#endif
#endif
#ifndef FZ_POISON
#define FZ_POISON(p, n) ((void)(p), (void)(n))
#define FZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}

static inline double fz_f64(fz_in *in)
{
    uint64_t bits = fz_u64(in);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A harness found a wrong result (not a sanitizer report): print and abort, so libFuzzer
 * records the input as a crash. */
#define FZ_CHECK(cond, ...)                                                                   \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/*
 * Guarded buffers: the buffer's last byte sits just before a PROT_NONE page, and the arena
 * bytes before the buffer are ASan-poisoned. The codec libraries come uninstrumented from
 * the blosc2 wheel, so ASan alone would not see them write past a buffer the core hands
 * them; the guard page does (SEGV). One arena per role, reused across inputs.
 */
typedef struct fz_arena {
    uint8_t *base; /* usable bytes [base, base + cap), then the guard page */
    size_t cap;
    size_t poisoned; /* bytes at base currently poisoned */
} fz_arena;

static inline void fz_arena_init(fz_arena *a, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cap = (cap + page - 1) / page * page;
    uint8_t *m = mmap(NULL, cap + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(m + cap, page, PROT_NONE) != 0) {
        perror("mprotect");
        abort();
    }
    a->base = m;
    a->cap = cap;
    a->poisoned = 0;
}

/* n bytes ending at the guard page (NULL if n > cap). n == 0 gives a pointer to the guard. */
static inline uint8_t *fz_arena_get(fz_arena *a, size_t n)
{
    if (n > a->cap)
        return NULL;
    FZ_UNPOISON(a->base, a->cap);
    a->poisoned = a->cap - n;
    FZ_POISON(a->base, a->poisoned);
    return a->base + a->poisoned;
}

/* A copy of data[0, n) ending at the guard page: reads past the end fault even in the
 * uninstrumented libraries (libFuzzer's own copy of the input is an ordinary heap block). */
static inline const uint8_t *fz_arena_put(fz_arena *a, const uint8_t *data, size_t n)
{
    uint8_t *p = fz_arena_get(a, n);
    if (p && n)
        memcpy(p, data, n);
    return p;
}

/* Small deterministic hash of the input, for choices that must not cost input bytes. */
static inline uint64_t fz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#endif
