// The prefill's products with a short inner dimension (cpu_engine_kernels.h ShortKTileFn): one tile of up to
// kShortKTileRows × kShortKTileCols outputs, every output one chain of fused multiply-adds over k in order, built for
// AVX-512, AVX2 + FMA, FMA3 alone and baseline x86-64. A correctly rounded fused multiply-add gives the same bits in
// every version, so the versions agree bit for bit; the baseline one calls std::fma (libm: exact, slow without FMA3).
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "aviary/core/cpu_engine_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace aviary::cpu {

namespace {

// Rows one at a time, each output's chain advanced k by k across the row (so a compiler can vectorise over the
// columns: each output still adds its products in the order of k). Inlined into each version, which decides what
// std::fma compiles to.
inline __attribute__((always_inline)) void short_k_loop(const float* h, int64_t h_stride, int64_t m, const float* w,
                                                        int64_t K, int64_t N, int64_t nb, float* out, int64_t os) {
    for (int64_t r = 0; r < m; ++r) {
        float* o = out + r * os;
        for (int64_t c = 0; c < nb; ++c) o[c] = 0.0f;
        for (int64_t k = 0; k < K; ++k) {
            const float a = h[r * h_stride + k];
            const float* wk = w + k * N;
            for (int64_t c = 0; c < nb; ++c) o[c] = std::fma(a, wk[c], o[c]);
        }
    }
}

void short_k_tile_base(const float* h, int64_t h_stride, int64_t m, const float* w, int64_t K, int64_t N, int64_t nb,
                       float* out, int64_t os) {
    short_k_loop(h, h_stride, m, w, K, N, nb, out, os);
}

#if defined(__x86_64__) && defined(__GNUC__)
// fn(std::integral_constant<int, M>) for the tile's row count m = M in 1 … kShortKTileRows.
template <class Fn>
void with_rows(int64_t m, Fn&& fn) {
    switch (m) {
        case 4:
            return fn(std::integral_constant<int, 4>{});
        case 3:
            return fn(std::integral_constant<int, 3>{});
        case 2:
            return fn(std::integral_constant<int, 2>{});
        case 1:
            return fn(std::integral_constant<int, 1>{});
        default:
            return;
    }
}

#define AVIARY_AVX512 __attribute__((target("avx512f")))
#define AVIARY_AVX2 __attribute__((target("avx2,fma")))

// The same loop where the CPU has FMA3 but the engine runs the scalar set: std::fma becomes the instruction, not a
// call into libm (a forced scalar set's prefill went from 0.12 to 0.80 of the default's on a Zen 4 core).
__attribute__((target("fma"))) void short_k_tile_fma(const float* h, int64_t h_stride, int64_t m, const float* w,
                                                     int64_t K, int64_t N, int64_t nb, float* out, int64_t os) {
    short_k_loop(h, h_stride, m, w, K, N, nb, out, os);
}

// AVX-512: M rows × 4 vectors of 16 columns in 4·M accumulators; a column tail is masked. The loops over rows and
// vectors are unrolled by hand (the pragmas): left to GCC 12 at -O2, the accumulators lived on the stack, stored every
// k.
template <int M>
AVIARY_AVX512 void tile_avx512(const float* h, int64_t hs, const float* w, int64_t K, int64_t N, int64_t nb, float* out,
                               int64_t os) {
    __mmask16 mask[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
        const int64_t rest = nb - 16 * q;
        mask[q] = rest >= 16 ? __mmask16(0xFFFF) : rest > 0 ? __mmask16((1u << rest) - 1) : __mmask16(0);
    }
    __m512 acc[M][4];
#pragma GCC unroll 4
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        const float* wk = w + k * N;
        __m512 wv[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) wv[q] = _mm512_maskz_loadu_ps(mask[q], wk + 16 * q);
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r) {
            const __m512 hb = _mm512_set1_ps(h[r * hs + k]);
#pragma GCC unroll 4
            for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_fmadd_ps(hb, wv[q], acc[r][q]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) _mm512_mask_storeu_ps(out + r * os + 16 * q, mask[q], acc[r][q]);
}

AVIARY_AVX512 void short_k_tile_avx512(const float* h, int64_t hs, int64_t m, const float* w, int64_t K, int64_t N,
                                       int64_t nb, float* out, int64_t os) {
    if (nb > kShortKTileCols || m > kShortKTileRows) return short_k_tile_base(h, hs, m, w, K, N, nb, out, os);
    with_rows(m, [&](auto M) { tile_avx512<decltype(M)::value>(h, hs, w, K, N, nb, out, os); });
}

// AVX2: 16 columns (two vectors) at a time, M rows in 2·M accumulators (16 registers in all); a tail is masked.
template <int M>
AVIARY_AVX2 void tile_avx2(const float* h, int64_t hs, const float* w, int64_t K, int64_t N, int64_t nb, float* out,
                           int64_t os) {
    for (int64_t c0 = 0; c0 < nb; c0 += 16) {
        __m256i mask[2];
#pragma GCC unroll 4
        for (int q = 0; q < 2; ++q) {
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            mask[q] = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(nb - c0 - 8 * q)), lane);
        }
        __m256 acc[M][2];
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int64_t k = 0; k < K; ++k) {
            const float* wk = w + k * N + c0;
            const __m256 w0 = _mm256_maskload_ps(wk, mask[0]), w1 = _mm256_maskload_ps(wk + 8, mask[1]);
#pragma GCC unroll 4
            for (int r = 0; r < M; ++r) {
                const __m256 hb = _mm256_broadcast_ss(h + r * hs + k);
                acc[r][0] = _mm256_fmadd_ps(hb, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(hb, w1, acc[r][1]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r) {
            _mm256_maskstore_ps(out + r * os + c0, mask[0], acc[r][0]);
            _mm256_maskstore_ps(out + r * os + c0 + 8, mask[1], acc[r][1]);
        }
    }
}

AVIARY_AVX2 void short_k_tile_avx2(const float* h, int64_t hs, int64_t m, const float* w, int64_t K, int64_t N,
                                   int64_t nb, float* out, int64_t os) {
    if (nb > kShortKTileCols || m > kShortKTileRows) return short_k_tile_base(h, hs, m, w, K, N, nb, out, os);
    with_rows(m, [&](auto M) { tile_avx2<decltype(M)::value>(h, hs, w, K, N, nb, out, os); });
}
#endif

}  // namespace

ShortKTileFn short_k_tile_for(const std::string& kernel_set) {
    if (kernel_set == "baseline") return &short_k_tile_base;
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_set == "avx512" || kernel_set == "avx512vnni") return &short_k_tile_avx512;
    if (kernel_set == "avx2") return &short_k_tile_avx2;
    if (__builtin_cpu_supports("fma")) return &short_k_tile_fma;
#endif
    return &short_k_tile_base;
}

}  // namespace aviary::cpu
