// Branch-free float functions for element-wise loops (the CPU engine's, the fused training ops'), written so that GCC
// vectorises a loop that calls them (libm's expf is a call per element, which no loop around it can vectorise).
// (Header-only, no LibTorch.)
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

// A loop function built three times, for AVX-512, AVX2 and baseline x86-64, the version chosen at load by cpuid (GCC
// function multiversioning): 16 or 8 lanes instead of 4, and the selects (NaN checks, clamps) that baseline x86-64
// does not vectorise. Build such files with -ffp-contract=off where every version must give the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AVIARY_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AVIARY_SIMD_CLONES
#endif

namespace aviary::cpu {

// e^x: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, and the degree-7 Taylor polynomial of e^r (truncation
// ≤ (ln2/2)^8/8! ≈ 5e-9 relative, below fp32's 6e-8 half-ulp); measured against double-precision exp over
// [-87, 88]: 1.2 ulp at most (tests/core/test_cpu_gemm.cpp). x > 88.3 gives e^88.3 (the largest power the clamp
// allows), x < -87.3 gives 0, NaN stays NaN.
inline float exp_approx(float x) {
    const float c = std::min(std::max(x, -87.3f), 88.3f);  // NaN passes through both (comparisons are false)
    // n = round(c / ln2) by the 1.5·2²³ trick (no rounding instruction needed on baseline x86-64)
    const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (c - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n, n in [-126, 127]; a NaN x gives n = NaN, which must not reach the integer conversion (undefined): its
    // exponent is taken as 0 and p, already NaN, carries the NaN
    const float n_safe = n == n ? n : 0.0f;
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n_safe) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    const float y = p * scale;
    return x < -87.3f ? 0.0f : y;
}

inline float sigmoid_approx(float s) {
    return 1.0f / (1.0f + exp_approx(-s));
}

// tanh x: below |x| = 0.25 its odd Taylor series to x⁹ (next term < 3e-9 relative), above it
// sign(x)·(1 − 2/(e^{2|x|} + 1)) on exp_approx; both computed and one selected (no branch). Against double-precision
// tanh over [-10, 10]: at most 2.7e-7 relative (tests/core/test_cpu_gemm.cpp, VecMath; bound 5e-7).
inline float tanh_approx(float x) {
    const float a = std::fabs(x), x2 = x * x;
    const float small = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
    const float big = 1.0f - 2.0f / (exp_approx(2.0f * a) + 1.0f);
    return a < 0.25f ? small : std::copysign(big, x);
}

// bfloat16 <-> fp32: round to nearest even, LibTorch's bits for every value but NaN, which stays a quiet NaN
// (LibTorch's own conversions disagree on its bits). Inline so that loops over them vectorise (the prefill converts
// every GEMM input row).
inline uint16_t fp32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_fp32(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// An fp32 value stored as fp32 or as bf16 bits (uint16_t), and read back: one loop body for both storage types.
inline void store_value(float* p, float v) {
    *p = v;
}
inline void store_value(uint16_t* p, float v) {
    *p = fp32_to_bf16(v);
}
inline float load_value(const float* p) {
    return *p;
}
inline float load_value(const uint16_t* p) {
    return bf16_to_fp32(*p);
}

}  // namespace aviary::cpu
