// The CPU engine's per-token element-wise loops shared by the decode step and the prefill: LayerNorm, and the WKV step
// of one head followed by its GroupNorm and gate, built per instruction set (cpu_engine_impl.h).
#include <algorithm>
#include <cmath>

#include "cpu_engine_impl.h"

namespace aviary::engine_internal {

// LayerNorm over n values: (x − mean)/sqrt(var + eps)·w + b, biased variance (PyTorch's).
void layer_norm(const float* x, const float* w, const float* b, int64_t n, float* out) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    double var = 0;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}
// The per-head loops below (WKV step, GroupNorm + gate) are built for AVX-512, AVX2 and baseline x86-64 from one body
// each; an engine uses the version of its kernel set (CpuEngineOptions::kernels, chosen by cpuid), so the library
// itself stays baseline and the tests that run every kernel set run every version. Every element is computed in the
// same order in every version (no FMA contraction in ISO C++ mode): the versions agree bit for bit.
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

// One token of one head, then its GroupNorm and gate.
using HeadStepFn = void (*)(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                            const float* dd, float* S, float* y, const float* gw, const float* gb, const float* gg);
#define AVIARY_HEAD_STEP(NAME, ATTR)                                                                               \
    ATTR void NAME(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu, const float* dd, \
                   float* S, float* y, const float* gw, const float* gb, const float* gg) {                        \
        wkv_token_body(N, rr, kk, vv, uu, dd, S, y);                                                               \
        group_norm_gate_body(N, y, gw, gb, gg);                                                                    \
    }
AVIARY_HEAD_STEP(head_step_base, )
#if defined(__x86_64__) && defined(__GNUC__)
AVIARY_HEAD_STEP(head_step_avx2, __attribute__((target("avx2"))))
AVIARY_HEAD_STEP(head_step_avx512, __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2"))))
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
