/*
 * timewarp.c - the fused time geometry of the ECG augmentations, for (B, L, T) float32 signals on the CPU.
 *
 * One pass renders, per sample b, the composition  crop -> span masks -> shift  that aclecg.augment describes as a
 * Warp (see aclecg/augment.py, `render_warp`, whose torch code is the specification of this file; the two agree
 * to float rounding, as tests/test_native.py checks):
 *
 *   output sample t reads the crop output at s = src(t):
 *       circular: s = (t - shift) mod T        zero: s = t - shift, output 0 outside [0, T)
 *       edge:     s = clamp(t - shift, 0, T-1)
 *   the crop output s reads the input at p = start + s * step (linear interpolation between floor(p) and the next
 *   sample), and is 0 in lead l when s lies in a span [a, e) that applies to lead l.
 *
 * The per-sample tables (source index, two weights, a bit set of the spans covering each output sample) are built
 * once per sample and shared by its L leads. Rows are rendered 16 outputs at a time with AVX-512 when the CPU has
 * it: the 16 outputs of a block read at most 17 consecutive input samples (step <= 1), so two loads and two
 * two-source permutes replace 32 scattered loads. Blocks that do not fit that pattern (the circular seam, the last
 * samples of a row) and CPUs without AVX-512 use the scalar loop, which computes the same expression.
 *
 * Built on first use by aclecg/native/__init__.py with the system C compiler (no flags beyond -O3; the AVX-512
 * code is selected at run time with __builtin_cpu_supports). No OpenMP: the caller splits the batch across
 * threads (ctypes releases the GIL).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ACLECG_HAVE_AVX512_CODE 1
#endif

enum { SHIFT_CIRCULAR = 0, SHIFT_ZERO = 1, SHIFT_EDGE = 2 };

/* bit 31 of a table entry marks an output sample that a zero-padded shift left empty: zero in every lead */
#define OUTSIDE_BIT 0x80000000u
#define MAX_SPANS 31

/* 1: use the portable loop even where AVX-512 exists (set by the tests to check both paths) */
static int force_scalar = 0;

void aclecg_timewarp_force_scalar(int flag) { force_scalar = flag ? 1 : 0; }

static int cpu_has_avx512(void) {
#ifdef ACLECG_HAVE_AVX512_CODE
    if (force_scalar) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

/* The tables of one sample: idx[t] in [0, T-2], y = w0 * x[idx] + w1 * x[idx + 1], bits[t] = spans covering t.
 * src is scratch space for the crop-output sample read by each output sample. Written as simple loops that the
 * compiler vectorises (no division or branch per sample). */
static inline __attribute__((always_inline)) void sample_tables(int64_t T, double start, double step, int64_t shift, int mode, const int64_t *spans,
                          int64_t M, int32_t *src, int32_t *idx, float *w0, float *w1, uint32_t *bits) {
    if (mode == SHIFT_CIRCULAR) {
        int64_t s0 = (-shift) % T;
        if (s0 < 0) s0 += T;
        int64_t split = T - s0; /* outputs [0, split) read s0.., [split, T) wrap to 0.. */
        for (int64_t t = 0; t < split; ++t) src[t] = (int32_t)(s0 + t);
        for (int64_t t = split; t < T; ++t) src[t] = (int32_t)(t - split);
        for (int64_t t = 0; t < T; ++t) bits[t] = 0;
    } else {
        for (int64_t t = 0; t < T; ++t) {
            int64_t s = t - shift;
            bits[t] = (mode == SHIFT_ZERO && (s < 0 || s >= T)) ? OUTSIDE_BIT : 0u;
            src[t] = (int32_t)(s < 0 ? 0 : (s >= T ? T - 1 : s));
        }
    }
    const double last = (double)(T - 1);
    const int32_t max_left = (int32_t)(T - 2);
    for (int64_t t = 0; t < T; ++t) {
        double pos = start + (double)src[t] * step;
        pos = pos < 0.0 ? 0.0 : (pos > last ? last : pos);
        int32_t i = (int32_t)pos; /* pos >= 0: truncation is floor */
        i = i > max_left ? max_left : i;
        float w = (float)(pos - (double)i);
        idx[t] = i;
        w0[t] = 1.0f - w;
        w1[t] = w;
    }
    for (int64_t m = 0; m < M; ++m) {
        int64_t a = spans[2 * m], e = spans[2 * m + 1];
        if (a < 0 || e <= a) continue;
        const uint32_t bit = (uint32_t)1 << m;
        for (int64_t t = 0; t < T; ++t) bits[t] |= (src[t] >= a && src[t] < e) ? bit : 0u;
    }
}

static void row_scalar(const float *xr, float *yr, int64_t t0, int64_t t1, const int32_t *idx, const float *w0,
                       const float *w1, const uint32_t *bits, uint32_t lead_bits) {
    for (int64_t t = t0; t < t1; ++t) {
        int32_t i = idx[t];
        float v = w0[t] * xr[i] + w1[t] * xr[i + 1];
        yr[t] = (bits[t] & lead_bits) ? 0.0f : v;
    }
}

#ifdef ACLECG_HAVE_AVX512_CODE
/* The same tables, compiled for AVX-512 (the inlined loops vectorise 8 doubles / 16 floats wide). */
__attribute__((target("avx512f")))
static void sample_tables_avx512(int64_t T, double start, double step, int64_t shift, int mode, const int64_t *spans,
                                 int64_t M, int32_t *src, int32_t *idx, float *w0, float *w1, uint32_t *bits) {
    sample_tables(T, start, step, shift, mode, spans, M, src, idx, w0, w1, bits);
}

/* Lanes [0, n) of a 16-lane mask (n clipped to [0, 16]). */
static inline __mmask16 first_lanes(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u));
}

/*
 * One row, 16 outputs per block. The outputs of a block read x[base + d], x[base + d + 1] with base = idx[t] and
 * offsets d in [0, 15] whenever the source moves forward by at most one sample per output (any crop; everywhere but
 * at the seam of a circular shift): two (masked) loads of x[base .. base + 31] and two permutes serve the block.
 * Other blocks take the scalar loop. With `stream`, full blocks are written with non-temporal stores, which need
 * 64-byte aligned addresses: the first block is shortened to reach the alignment.
 */
__attribute__((target("avx512f")))
static void row_avx512(const float *xr, float *yr, int64_t T, const int32_t *idx, const float *w0, const float *w1,
                       const uint32_t *bits, uint32_t lead_bits, int stream) {
    const __m512i one = _mm512_set1_epi32(1), fifteen = _mm512_set1_epi32(15);
    const __m512i lb = _mm512_set1_epi32((int32_t)lead_bits);
    int64_t t = 0;
    int64_t mis = stream ? (int64_t)(((uintptr_t)yr & 63u) / sizeof(float)) : 0;
    int64_t n = mis ? 16 - mis : 16;
    while (t < T) {
        if (n > T - t) n = T - t;
        int32_t base = idx[t];
        if (n == 16 && (int64_t)base + 32 <= T) { /* the common case: a full block, no masks needed */
            __m512i d = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(idx + t)), _mm512_set1_epi32(base));
            if (_mm512_cmple_epu32_mask(d, fifteen) == (__mmask16)0xFFFF) {
                __m512 lo = _mm512_loadu_ps(xr + base), hi = _mm512_loadu_ps(xr + base + 16);
                __m512 a = _mm512_permutex2var_ps(lo, d, hi);
                __m512 b = _mm512_permutex2var_ps(lo, _mm512_add_epi32(d, one), hi);
                __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(w0 + t), a),
                                         _mm512_mul_ps(_mm512_loadu_ps(w1 + t), b));
                __mmask16 keep = _mm512_testn_epi32_mask(_mm512_loadu_si512((const void *)(bits + t)), lb);
                y = _mm512_maskz_mov_ps(keep, y);
                if (stream)
                    _mm512_stream_ps(yr + t, y);
                else
                    _mm512_storeu_ps(yr + t, y);
            } else {
                row_scalar(xr, yr, t, t + 16, idx, w0, w1, bits, lead_bits);
            }
            t += 16;
            continue;
        }
        __mmask16 lanes = first_lanes(n); /* a short block: the aligning head, the row's tail, or its last samples */
        __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(lanes, idx + t), _mm512_set1_epi32(base));
        if ((_mm512_mask_cmple_epu32_mask(lanes, d, fifteen)) == lanes) {
            int64_t avail = T - base; /* x[base + j] exists for j < avail */
            __m512 lo = _mm512_maskz_loadu_ps(first_lanes(avail), xr + base);
            __m512 hi = _mm512_maskz_loadu_ps(first_lanes(avail - 16), xr + base + 16);
            __m512 a = _mm512_permutex2var_ps(lo, d, hi);
            __m512 b = _mm512_permutex2var_ps(lo, _mm512_add_epi32(d, one), hi);
            __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, w0 + t), a),
                                     _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, w1 + t), b));
            __mmask16 keep = _mm512_testn_epi32_mask(_mm512_maskz_loadu_epi32(lanes, bits + t), lb);
            _mm512_mask_storeu_ps(yr + t, lanes, _mm512_maskz_mov_ps(keep, y));
        } else {
            row_scalar(xr, yr, t, t + n, idx, w0, w1, bits, lead_bits);
        }
        t += n;
        n = 16;
    }
}
#endif

/* Which code path aclecg_timewarp takes on this CPU: 512 (AVX-512) or 0 (portable scalar loop). */
int aclecg_timewarp_isa(void) { return cpu_has_avx512() ? 512 : 0; }

/*
 * Render samples [b0, b1) of x (B, L, T) into y (same shape; both contiguous float32).
 * start, step: (B,) float64 crop; shift: (B,) int64; mode: 0 circular, 1 zero, 2 edge;
 * spans: (B, M, 2) int64 [a, e) in crop-output samples, a < 0 = unused; span_leads: (B, M, L) uint8.
 * stream: 1 to write with non-temporal stores (large outputs). Returns 0, or -1 for bad sizes, -2 out of memory.
 */
int aclecg_timewarp(const float *x, float *y, int64_t B, int64_t L, int64_t T, int64_t b0, int64_t b1,
                    const double *start, const double *step, const int64_t *shift, int mode, const int64_t *spans,
                    const uint8_t *span_leads, int64_t M, int stream) {
    if (T < 2 || T > INT32_MAX - 64 || M < 0 || M > MAX_SPANS || b0 < 0 || b1 > B || L < 1) return -1;
    int32_t *src = malloc((size_t)T * sizeof(int32_t));
    int32_t *idx = malloc((size_t)T * sizeof(int32_t));
    float *w0 = malloc((size_t)T * sizeof(float));
    float *w1 = malloc((size_t)T * sizeof(float));
    uint32_t *bits = malloc((size_t)T * sizeof(uint32_t));
    if (!src || !idx || !w0 || !w1 || !bits) {
        free(src); free(idx); free(w0); free(w1); free(bits);
        return -2;
    }
    int avx512 = cpu_has_avx512();
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t *sp = spans ? spans + b * M * 2 : NULL;
#ifdef ACLECG_HAVE_AVX512_CODE
        if (avx512)
            sample_tables_avx512(T, start[b], step[b], shift[b], mode, sp, M, src, idx, w0, w1, bits);
        else
#endif
            sample_tables(T, start[b], step[b], shift[b], mode, sp, M, src, idx, w0, w1, bits);
        for (int64_t l = 0; l < L; ++l) {
            uint32_t lead_bits = OUTSIDE_BIT;
            for (int64_t m = 0; m < M; ++m)
                if (span_leads[(b * M + m) * L + l]) lead_bits |= (uint32_t)1 << m;
            const float *xr = x + (b * L + l) * T;
            float *yr = y + (b * L + l) * T;
#ifdef ACLECG_HAVE_AVX512_CODE
            if (avx512) {
                row_avx512(xr, yr, T, idx, w0, w1, bits, lead_bits, stream);
                continue;
            }
#endif
            row_scalar(xr, yr, 0, T, idx, w0, w1, bits, lead_bits);
        }
    }
#ifdef ACLECG_HAVE_AVX512_CODE
    if (avx512 && stream) _mm_sfence();
#endif
    free(src); free(idx); free(w0); free(w1); free(bits);
    return 0;
}
