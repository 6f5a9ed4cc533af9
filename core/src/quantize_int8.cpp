// Symmetric per-output-channel int8 quantisation of weight matrices for the CPU decode engine
// (cpu_engine_kernels.h): one fp32 scale per row, max |w| / 127, values rounded to nearest. The same scheme as
// LLM.int8's vector-wise weight quantisation without outliers; the decode kernels multiply the scale back per row.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_info.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define AVIARY_QUANTIZE_X86 1
#endif

namespace aviary::cpu {

namespace {

// One value: v = w·(1/scale) rounded half to even by the 1.5·2^23 trick (exact for |v| < 2^22, and |v| <= 127 here:
// no libm call), clamped to [-127, 127]; NaN gives 0.
inline int8_t quantize_one(float w, float inv) {
    const float v = (w * inv + 12582912.0f) - 12582912.0f;
    return v == v ? static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f)) : int8_t(0);
}

// The reference for one row (and the loop every ISA runs for a row's last few values).
float row_max_abs(const float* row, int64_t c, int64_t cols, float amax) {
    for (; c < cols; ++c) amax = std::max(amax, std::fabs(row[c]));  // a NaN never wins (std::max keeps amax)
    return amax;
}
// The row's scale from the vector lanes' maxima (n_lanes of them) and the values from column c on: stored in *scale;
// returns 1/scale.
float store_scale(const float* lanes, int n_lanes, const float* row, int64_t c, int64_t cols, float* scale) {
    float amax = 0;
    for (int l = 0; l < n_lanes; ++l) amax = std::max(amax, lanes[l]);
    amax = row_max_abs(row, c, cols, amax);
    *scale = amax > 0 ? amax / 127.0f : 1.0f;
    return 1.0f / *scale;
}
void quantize_row_generic(const float* row, int64_t cols, int8_t* q, float* scale) {
    const float inv = store_scale(nullptr, 0, row, 0, cols, scale);
    for (int64_t c = 0; c < cols; ++c) q[c] = quantize_one(row[c], inv);
}

#ifdef AVIARY_QUANTIZE_X86
// The same values with 16 lanes: max with the running maximum as the second operand (vmaxps returns it when the
// other is NaN, as std::max keeps amax), vcvtps2dq rounds half to even (the default MXCSR mode) as the trick does,
// then the clamp; NaN lanes are set to 0. The prefill quantises every GEMM input row with this (issue 18: on the
// baseline build it was ~14 % of an int8 prefill's CPU time).
// (The zero-masked forms of the intrinsics: GCC 12 warns that the plain ones' undefined pass-through may be
// uninitialised, as in matvec_simd_body.inc.)
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_row_avx512(const float* row, int64_t cols, int8_t* q,
                                                                              float* scale) {
    constexpr __mmask16 all = 0xFFFF;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    __m512 mx = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(row + c), abs_mask));
        mx = _mm512_maskz_max_ps(all, a, mx);
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, mx);
    const float inv = store_scale(lanes, 16, row, c, cols, scale);
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (c = 0; c + 16 <= cols; c += 16) {
        const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(row + c), vinv);
        const __mmask16 ordered = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        const __m512i i =
            _mm512_maskz_max_epi32(all, _mm512_maskz_min_epi32(all, _mm512_maskz_cvtps_epi32(all, v), hi), lo);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + c), _mm512_maskz_cvtepi32_epi8(ordered, i));  // NaN lanes: 0
    }
    for (; c < cols; ++c) q[c] = quantize_one(row[c], inv);
}

// AVX2 (the EPYC class): 8 lanes, the same steps; int32 → int8 by two saturating packs (values already in range).
__attribute__((target("avx2"))) void quantize_row_avx2(const float* row, int64_t cols, int8_t* q, float* scale) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) mx = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(row + c), abs_mask), mx);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mx);
    const float inv = store_scale(lanes, 8, row, c, cols, scale);
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    for (c = 0; c + 8 <= cols; c += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + c), vinv);
        __m256i i = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(v), hi), lo);
        i = _mm256_and_si256(i, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q)));
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(q + c), _mm_packs_epi16(w16, w16));
    }
    for (; c < cols; ++c) q[c] = quantize_one(row[c], inv);
}
#endif

using RowFn = void (*)(const float*, int64_t, int8_t*, float*);
struct Version {
    const char* name;
    RowFn fn;
};
// Every version this CPU runs, plain loop first, best last.
std::vector<Version> versions() {
    std::vector<Version> v{{"generic", &quantize_row_generic}};
#ifdef AVIARY_QUANTIZE_X86
    if (cpu_info().avx2) v.push_back({"avx2", &quantize_row_avx2});
    if (cpu_info().avx512) v.push_back({"avx512", &quantize_row_avx512});
#endif
    return v;
}

}  // namespace

void quantize_rows_int8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale) {
    static const RowFn row_fn = versions().back().fn;
    for (int64_t r = 0; r < rows; ++r) row_fn(w + r * cols, cols, q + r * cols, scale + r);
}

std::vector<std::string> quantize_rows_int8_versions() {
    std::vector<std::string> names;
    for (const Version& v : versions()) names.push_back(v.name);
    return names;
}

void quantize_rows_int8_version(const std::string& name, const float* w, int64_t rows, int64_t cols, int8_t* q,
                                float* scale) {
    for (const Version& v : versions())
        if (name == v.name) {
            for (int64_t r = 0; r < rows; ++r) v.fn(w + r * cols, cols, q + r * cols, scale + r);
            return;
        }
    throw std::invalid_argument("quantize_rows_int8_version: '" + name + "' does not run on this CPU");
}

}  // namespace aviary::cpu
