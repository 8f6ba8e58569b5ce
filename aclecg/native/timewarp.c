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
static inline __attribute__((always_inline)) void sample_tables(int64_t T, double start, double step, int64_t shift,
                                                                int mode, const int64_t *spans, int64_t M,
                                                                int32_t *src, int32_t *idx, float *w0, float *w1,
                                                                uint32_t *bits) {
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

/* 16 outputs from the window lo|hi = x[base .. base + 31]: w0 * x[base + d] + w1 * x[base + d + 1], zero where
 * the span bits meet the lead's. */
__attribute__((target("avx512f")))
static inline __m512 block_avx512(__m512 lo, __m512 hi, __m512i d, __m512 w0, __m512 w1, __m512i bits, __m512i lb) {
    __m512 a = _mm512_permutex2var_ps(lo, d, hi);
    __m512 b = _mm512_permutex2var_ps(lo, _mm512_add_epi32(d, _mm512_set1_epi32(1)), hi);
    __m512 y = _mm512_add_ps(_mm512_mul_ps(w0, a), _mm512_mul_ps(w1, b));
    return _mm512_maskz_mov_ps(_mm512_testn_epi32_mask(bits, lb), y);
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
    const __m512i fifteen = _mm512_set1_epi32(15);
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
                __m512 y = block_avx512(_mm512_loadu_ps(xr + base), _mm512_loadu_ps(xr + base + 16), d,
                                        _mm512_loadu_ps(w0 + t), _mm512_loadu_ps(w1 + t),
                                        _mm512_loadu_si512((const void *)(bits + t)), lb);
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
            __m512 y = block_avx512(_mm512_maskz_loadu_ps(first_lanes(avail), xr + base),
                                    _mm512_maskz_loadu_ps(first_lanes(avail - 16), xr + base + 16), d,
                                    _mm512_maskz_loadu_ps(lanes, w0 + t), _mm512_maskz_loadu_ps(lanes, w1 + t),
                                    _mm512_maskz_loadu_epi32(lanes, bits + t), lb);
            _mm512_mask_storeu_ps(yr + t, lanes, y);
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

/* Scratch space for one sample's tables. */
typedef struct {
    int32_t *src, *idx;
    float *w0, *w1;
    uint32_t *bits;
} tables_t;

static int tables_alloc(tables_t *tb, int64_t T) {
    tb->src = malloc((size_t)T * sizeof(int32_t));
    tb->idx = malloc((size_t)T * sizeof(int32_t));
    tb->w0 = malloc((size_t)T * sizeof(float));
    tb->w1 = malloc((size_t)T * sizeof(float));
    tb->bits = malloc((size_t)T * sizeof(uint32_t));
    return tb->src && tb->idx && tb->w0 && tb->w1 && tb->bits;
}

static void tables_free(tables_t *tb) {
    free(tb->src); free(tb->idx); free(tb->w0); free(tb->w1); free(tb->bits);
}

/* Build the tables of sample b and render its L leads; lead_bits[l] says which spans blank lead l. */
static void render_sample(const float *xs, float *ys, int64_t L, int64_t T, double start, double step, int64_t shift,
                          int mode, const int64_t *spans, int64_t M, const uint32_t *lead_bits, tables_t *tb,
                          int avx512, int stream) {
#ifdef ACLECG_HAVE_AVX512_CODE
    if (avx512)
        sample_tables_avx512(T, start, step, shift, mode, spans, M, tb->src, tb->idx, tb->w0, tb->w1, tb->bits);
    else
#endif
        sample_tables(T, start, step, shift, mode, spans, M, tb->src, tb->idx, tb->w0, tb->w1, tb->bits);
    for (int64_t l = 0; l < L; ++l) {
        const float *xr = xs + l * T;
        float *yr = ys + l * T;
#ifdef ACLECG_HAVE_AVX512_CODE
        if (avx512) {
            row_avx512(xr, yr, T, tb->idx, tb->w0, tb->w1, tb->bits, lead_bits[l], stream);
            continue;
        }
#endif
        row_scalar(xr, yr, 0, T, tb->idx, tb->w0, tb->w1, tb->bits, lead_bits[l]);
    }
    (void)stream;
}

#define MAX_LEADS 64

/*
 * Render samples [b0, b1) of x (B, L, T) into y (same shape; both contiguous float32).
 * start, step: (B,) float64 crop; shift: (B,) int64; mode: 0 circular, 1 zero, 2 edge;
 * spans: (B, M, 2) int64 [a, e) in crop-output samples, a < 0 = unused; span_leads: (B, M, L) uint8.
 * stream: 1 to write with non-temporal stores (large outputs). Returns 0, or -1 for bad sizes, -2 out of memory.
 */
int aclecg_timewarp(const float *x, float *y, int64_t B, int64_t L, int64_t T, int64_t b0, int64_t b1,
                    const double *start, const double *step, const int64_t *shift, int mode, const int64_t *spans,
                    const uint8_t *span_leads, int64_t M, int stream) {
    if (T < 2 || T > INT32_MAX - 64 || M < 0 || M > MAX_SPANS || b0 < 0 || b1 > B || L < 1 || L > MAX_LEADS)
        return -1;
    tables_t tb;
    if (!tables_alloc(&tb, T)) {
        tables_free(&tb);
        return -2;
    }
    int avx512 = cpu_has_avx512();
    uint32_t lead_bits[MAX_LEADS];
    for (int64_t b = b0; b < b1; ++b) {
        for (int64_t l = 0; l < L; ++l) {
            lead_bits[l] = OUTSIDE_BIT;
            for (int64_t m = 0; m < M; ++m)
                if (span_leads[(b * M + m) * L + l]) lead_bits[l] |= (uint32_t)1 << m;
        }
        render_sample(x + b * L * T, y + b * L * T, L, T, start[b], step[b], shift[b], mode,
                      spans ? spans + b * M * 2 : NULL, M, lead_bits, &tb, avx512, stream);
    }
#ifdef ACLECG_HAVE_AVX512_CODE
    if (avx512 && stream) _mm_sfence();
#endif
    tables_free(&tb);
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------
 * Physio-AUG in one call: the parameters of random scale crop -> cardiac-cycle mask (zero fill) -> temporal shift,
 * derived from the same uniform draws and by the same arithmetic as the torch code of aclecg.augment
 * (RandomScaleCrop, CardiacCycleMask and TemporalShift: sample_params + plan), then rendered as above. Used by
 * Compose for the "physio" pattern when no info is asked for; tests/test_native.py checks that the views are
 * identical to the torch planning's.
 * ------------------------------------------------------------------------------------------------------------ */

#define MAX_PEAKS 4096

static int64_t randint(double u, int64_t lo, int64_t hi) { /* as aclecg.augment._randint */
    double v = floor(u * (double)(hi - lo + 1)) + (double)lo;
    return (int64_t)(v > (double)hi ? (double)hi : v);
}

/*
 * rpeaks: (B, K) int64, valid peaks first in ascending order, -1 after (as sanitize_rpeaks returns them).
 * u_crop (B, 2), u_mask (B, 3 + C) with C = K - 1 ("rr") or K ("pqrst"), u_shift (B,): float32 draws.
 * dp: [crop_lo, crop_hi - crop_lo, max_shift (samples, < 0: the median RR), rr_default (samples)]
 * ip: [n_lo, n_hi, window (0 rr, 1 pqrst), pre, post, fallback_len, scope (-2 all, -1 random region, r region r),
 *      n_regions, shift_mode]
 * region_table: (n_regions, L) uint8.
 */
int aclecg_physio(const float *x, float *y, int64_t B, int64_t L, int64_t T, int64_t b0, int64_t b1,
                  const int64_t *rpeaks, int64_t K, const float *u_crop, const float *u_mask, const float *u_shift,
                  const double *dp, const int64_t *ip, const uint8_t *region_table, int stream) {
    const double crop_lo = dp[0], crop_span = dp[1], max_shift = dp[2], rr_default = dp[3];
    const int64_t n_lo = ip[0], n_hi = ip[1], window = ip[2], pre = ip[3], post = ip[4], fallback_len = ip[5];
    const int64_t scope = ip[6], n_regions = ip[7], mode = ip[8];
    const int64_t C = window == 0 ? (K > 1 ? K - 1 : 0) : K;
    if (T < 2 || T > INT32_MAX - 64 || L < 1 || L > MAX_LEADS || K < 0 || K > MAX_PEAKS || n_lo < 0 ||
        n_hi < n_lo || n_hi + 1 > MAX_SPANS || b0 < 0 || b1 > B || (scope >= 0 && scope >= n_regions))
        return -1;
    tables_t tb;
    int64_t *pk = malloc((size_t)(K + 1) * sizeof(int64_t)), *cs = malloc((size_t)(C + 1) * sizeof(int64_t));
    int64_t *ce = malloc((size_t)(C + 1) * sizeof(int64_t));
    uint8_t *taken = malloc((size_t)(C + 1));
    if (!tables_alloc(&tb, T) || !pk || !cs || !ce || !taken) {
        tables_free(&tb); free(pk); free(cs); free(ce); free(taken);
        return -2;
    }
    int avx512 = cpu_has_avx512();
    int64_t spans[2 * MAX_SPANS];
    uint32_t lead_bits[MAX_LEADS];
    for (int64_t b = b0; b < b1; ++b) {
        const int64_t *rp = rpeaks + b * K;
        const float *uc = u_crop + 2 * b, *um = u_mask + b * (3 + C);
        /* random scale crop: width, start, and the R-peaks inside the window mapped onto the output */
        int64_t w = (int64_t)nearbyint(((double)uc[0] * crop_span + crop_lo) * (double)T);
        w = w < 2 ? 2 : (w > T ? T : w);
        int64_t st = (int64_t)floor((double)uc[1] * (double)(T - w + 1));
        if (st > T - w) st = T - w;
        int64_t m = 0;
        for (int64_t i = 0; i < K && rp[i] >= 0; ++i) {
            int64_t r = rp[i];
            if (r < st || r >= st + w) continue;
            int64_t num = (r - st) * 2 * (T - 1) + (w - 1), den = 2 * (w - 1);
            int64_t v = num >= 0 ? num / den : -((-num + den - 1) / den); /* floor division */
            pk[m++] = v < 0 ? 0 : (v > T - 1 ? T - 1 : v);
        }
        /* cardiac-cycle mask: candidate cycles, the count, the smallest keys (ties: the earlier cycle) */
        int64_t n_valid = 0;
        for (int64_t k = 0; k < C; ++k) {
            int valid;
            if (window == 0) {
                valid = k + 1 < m;
                if (valid) { cs[k] = pk[k]; ce[k] = pk[k + 1]; }
            } else {
                valid = k < m;
                if (valid) {
                    int64_t prev = k > 0 ? pk[k - 1] : -1, a = pk[k] - pre, e = pk[k] + post + 1;
                    a = a > prev + 1 ? a : prev + 1;
                    cs[k] = a < 0 ? 0 : a;
                    e = e < T ? e : T;
                    ce[k] = (k + 1 < m && pk[k + 1] < e) ? pk[k + 1] : e;
                }
            }
            taken[k] = valid ? 0 : 1;
            n_valid += valid;
        }
        int64_t count = randint((double)um[0], n_lo, n_hi);
        int64_t n_take = count < n_valid ? count : n_valid, M = 0;
        for (int64_t j = 0; j < n_take; ++j) {
            int64_t best = -1;
            for (int64_t k = 0; k < C; ++k)
                if (!taken[k] && (best < 0 || um[3 + k] < um[3 + best])) best = k;
            taken[best] = 1;
            spans[2 * M] = cs[best];
            spans[2 * M + 1] = ce[best];
            ++M;
        }
        if (n_valid == 0 && count > 0 && n_hi > 0) { /* no cycle: one fallback span */
            int64_t f = (int64_t)floor((double)um[2] * (double)(T - fallback_len + 1));
            if (f > T - fallback_len) f = T - fallback_len;
            spans[0] = f;
            spans[1] = f + fallback_len;
            M = 1;
        }
        const uint8_t *leads = NULL; /* NULL: every lead */
        if (scope == -1)
            leads = region_table + randint((double)um[1], 0, n_regions - 1) * L;
        else if (scope >= 0)
            leads = region_table + scope * L;
        uint32_t all_spans = M ? (((uint32_t)1 << M) - 1u) : 0u;
        for (int64_t l = 0; l < L; ++l) lead_bits[l] = OUTSIDE_BIT | ((!leads || leads[l]) ? all_spans : 0u);
        /* temporal shift: up to the median RR of the cropped record (lower median), or a fixed limit */
        double limit = max_shift;
        if (max_shift < 0) {
            int64_t nd = m > 1 ? m - 1 : 0;
            limit = rr_default;
            if (nd > 0) { /* insertion sort of the RR intervals into ce (free again) */
                for (int64_t i = 0; i < nd; ++i) {
                    int64_t d = pk[i + 1] - pk[i], j = i;
                    while (j > 0 && ce[j - 1] > d) { ce[j] = ce[j - 1]; --j; }
                    ce[j] = d;
                }
                limit = (double)ce[(nd - 1) / 2];
            }
        }
        limit = limit < 0 ? 0 : (limit > (double)(T - 1) ? (double)(T - 1) : limit);
        limit = floor(limit);
        double sh = floor((double)u_shift[b] * (2 * limit + 1)) - limit;
        int64_t shift = (int64_t)(sh < limit ? sh : limit);
        render_sample(x + b * L * T, y + b * L * T, L, T, (double)st, (double)(w - 1) / (double)(T - 1), shift,
                      (int)mode, spans, M, lead_bits, &tb, avx512, stream);
    }
#ifdef ACLECG_HAVE_AVX512_CODE
    if (avx512 && stream) _mm_sfence();
#endif
    tables_free(&tb); free(pk); free(cs); free(ce); free(taken);
    return 0;
}
