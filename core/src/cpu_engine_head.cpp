// The CPU engine's per-token element-wise loops shared by the decode step and the prefill: LayerNorm, and the WKV step
// of one head followed by its GroupNorm and gate, built per instruction set (cpu_engine_impl.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu_engine_impl.h"

namespace aviary::engine_internal {

// LayerNorm over n values: (x − mean)/sqrt(var + eps)·w + b, biased variance (PyTorch's).
void layer_norm(const float* x, const float* w, const float* b, int64_t n, float* out) {
    // Both sums in eight interleaved double partial sums, added in a fixed order: independent chains the compiler can
    // vectorise (one serial chain of n additions was latency-bound, ~5 cycles a value), the same bits everywhere.
    auto sum = [n](auto&& value) {
        double part[8] = {};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; ++l) part[l] += value(i + l);
        for (int l = 0; i < n; ++i, ++l) part[l] += value(i);
        return ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
    };
    const double mean = sum([x](int64_t i) { return double(x[i]); }) / n;
    const double var = sum([x, mean](int64_t i) { return (x[i] - mean) * (x[i] - mean); }) / n;
    const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}
// The per-head loops below (WKV step, GroupNorm + gate) are built for AVX-512, AVX2 and baseline x86-64 from one body
// each; an engine uses the version of its kernel set (CpuEngineOptions::kernels, chosen by cpuid), so the library
// itself stays baseline and the tests that run every kernel set run every version. Every element is computed in the
// same order in every version, and this file is built with -ffp-contract=off (core/CMakeLists.txt; GCC would otherwise
// fuse multiply-adds in the AVX-512 version only): the versions agree bit for bit.
#define AVIARY_ALWAYS_INLINE inline __attribute__((always_inline))

// One token of one head (spec §2.5.1), S is [key j][value i]:
//   y_i = Σ_j r_j·(u_j·k_j·v_i + S_ji);  S_ji ← decay_j·S_ji + k_j·v_i
AVIARY_ALWAYS_INLINE void wkv_token_body(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                                         const float* dd, float* S, float* y) {
    std::fill_n(y, N, 0.0f);
    for (int64_t j = 0; j < N; ++j) {
        const float rj = rr[j], kj = kk[j], ukj = uu[j] * kj, dj = dd[j];
        float* Sj = S + j * N;
        for (int64_t i = 0; i < N; ++i) {
            y[i] += rj * (ukj * vv[i] + Sj[i]);
            Sj[i] = dj * Sj[i] + kj * vv[i];
        }
    }
}

// GroupNorm of one head's output (eps 64e-5, spec §2.2) times the gate: y = ((y − μ)/σ·w + b) ⊙ g.
AVIARY_ALWAYS_INLINE void group_norm_gate_body(int64_t N, float* y, const float* gw, const float* gb, const float* gg) {
    float mean = 0, var = 0;
    for (int64_t i = 0; i < N; ++i) mean += y[i];
    mean /= N;
    for (int64_t i = 0; i < N; ++i) var += (y[i] - mean) * (y[i] - mean);
    var /= N;
    const float inv = 1.0f / std::sqrt(var + kGroupNormEps);
    for (int64_t i = 0; i < N; ++i) y[i] = ((y[i] - mean) * inv * gw[i] + gb[i]) * gg[i];
}

// The official head size, 64, in vectors of W floats (GCC vector extensions: W = 16 in the AVX-512 build, 8 in the
// AVX2 one, 4 on baseline x86-64; each build its native width, so no vector is split or spilled). The state update is
// wkv_token_body's; y keeps its sums in registers across j, with the bonus term factored out (Σ_j r_j·u_j·k_j·v_i =
// v_i·Σ_j r_j·u_j·k_j: two operations per element fewer); the GroupNorm sums run as one fixed tree, written on the
// elements (16 partial sums y_l + y_16+l + y_32+l + y_48+l, then halves), instead of a serial chain of 64 dependent
// additions. Every build does the same operations on every element in the same order, so all give the same bits.
// The rounding order differs from wkv_token_body's and group_norm_gate_body's (the engine's tests hold both to
// Model::step at 1e-5).
AVIARY_ALWAYS_INLINE float sum64_tree(const float* y) {
    float part[16], half[8];
    for (int l = 0; l < 16; ++l) part[l] = (y[l] + y[16 + l]) + (y[32 + l] + y[48 + l]);
    for (int l = 0; l < 8; ++l) half[l] = part[l] + part[l + 8];
    const float q0 = half[0] + half[4], q1 = half[1] + half[5], q2 = half[2] + half[6], q3 = half[3] + half[7];
    return (q0 + q2) + (q1 + q3);
}
// W floats as one vector (GCC ignores a vector_size that depends on a template parameter, hence one per width).
template <int W>
struct FloatVec;
template <>
struct FloatVec<4> {
    typedef float type __attribute__((vector_size(16)));
};
template <>
struct FloatVec<8> {
    typedef float type __attribute__((vector_size(32)));
};
template <>
struct FloatVec<16> {
    typedef float type __attribute__((vector_size(64)));
};
template <int W>
AVIARY_ALWAYS_INLINE void head64_body(const float* rr, const float* kk, const float* vv, const float* uu,
                                      const float* dd, float* S, float* y, const float* gw, const float* gb,
                                      const float* gg) {
    using V = typename FloatVec<W>::type;
    static_assert(sizeof(V) == 4 * W, "one vector of W floats");
    constexpr int64_t N = 64;
    constexpr int K = N / W;
    V acc[K] = {};
    float ruk = 0;
    for (int64_t j = 0; j < N; ++j) {
        const float rj = rr[j], kj = kk[j], dj = dd[j];
        ruk += rj * (uu[j] * kj);
        float* Sj = S + j * N;
        for (int q = 0; q < K; ++q) {
            V v, s;
            std::memcpy(&v, vv + W * q, sizeof v);
            std::memcpy(&s, Sj + W * q, sizeof s);
            acc[q] += rj * s;
            const V next = dj * s + kj * v;
            std::memcpy(Sj + W * q, &next, sizeof next);
        }
    }
    for (int q = 0; q < K; ++q) {
        V v;
        std::memcpy(&v, vv + W * q, sizeof v);
        const V out = acc[q] + ruk * v;
        std::memcpy(y + W * q, &out, sizeof out);
    }
    const float mean = sum64_tree(y) / N;
    float sq[N];
    for (int64_t i = 0; i < N; ++i) {
        y[i] -= mean;
        sq[i] = y[i] * y[i];
    }
    const float var = sum64_tree(sq) / N;
    const float inv = 1.0f / std::sqrt(var + kGroupNormEps);
    for (int64_t i = 0; i < N; ++i) y[i] = (y[i] * inv * gw[i] + gb[i]) * gg[i];
}

// One token of one head, then its GroupNorm and gate.
using HeadStepFn = void (*)(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                            const float* dd, float* S, float* y, const float* gw, const float* gb, const float* gg);
#define AVIARY_HEAD_STEP(NAME, ATTR, W)                                                                            \
    ATTR void NAME(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu, const float* dd, \
                   float* S, float* y, const float* gw, const float* gb, const float* gg) {                        \
        if (N == 64) return head64_body<W>(rr, kk, vv, uu, dd, S, y, gw, gb, gg);                                  \
        wkv_token_body(N, rr, kk, vv, uu, dd, S, y);                                                               \
        group_norm_gate_body(N, y, gw, gb, gg);                                                                    \
    }
AVIARY_HEAD_STEP(head_step_base, , 4)
#if defined(__x86_64__) && defined(__GNUC__)
AVIARY_HEAD_STEP(head_step_avx2, __attribute__((target("avx2"))), 8)
AVIARY_HEAD_STEP(head_step_avx512, __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2"))), 16)
#endif
// The version for a kernel set ("avx512…", "avx2", else baseline); the set's own check ensures the CPU has it.
HeadStepFn head_step_for(const std::string& kernel_set) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_set == "avx512" || kernel_set == "avx512vnni") return &head_step_avx512;
    if (kernel_set == "avx2") return &head_step_avx2;
#endif
    return &head_step_base;
}

}  // namespace aviary::engine_internal
