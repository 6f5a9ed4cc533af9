// cpu_gemm.h's bf16_gemm_rates(): oneDNN's bf16 matmul against the engine's reference bf16 block (weight rows widened
// to fp32, then the BLAS sgemm), timed once per process on one thread. Which one is faster is not a property of the
// instruction sets: both run on AVX512-BF16 machines where the two differ by 3× in opposite directions
// (docs/BENCHMARKS.md), so the engine's "auto" asks the CPU it runs on.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_gemm.h"
#include "aviary/core/threads.h"

namespace aviary::cpu {

namespace {

// The shape of one block of the engine's prefill product: 256 tokens (the default prefill chunk) × 768 inputs
// against 448 weight rows (a 2-thread share of a 0.1B matrix).
constexpr int64_t kM = 256, kK = 768, kN = 448;
constexpr int kReps = 5;

template <class Fn>
double seconds(Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Bf16GemmRates measure() {
    Bf16GemmRates r;
    const OneDnnInfo& dnn = onednn_info();
    const SgemmRowMajorFn sgemm = blas_sgemm_row_major();
    if (!dnn.bf16_matmul || dnn.bf16_amx || !sgemm) return r;
    std::vector<float> x(size_t(kM * kK)), wide(size_t(kN * kK)), y(size_t(kM * kN));
    std::vector<uint16_t> xb(x.size()), w(wide.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i % 1013));
    for (size_t i = 0; i < w.size(); ++i) w[i] = fp32_to_bf16(0.05f * std::cos(0.11f * float(i % 997)));
    // each path as the engine runs it: activations rounded to bf16 + oneDNN, or weight rows widened + sgemm
    auto onednn = [&] {
        round_to_bf16(x.data(), kM * kK, xb.data());
        gemm_bf16_onednn(xb.data(), kM, kK, kK, w.data(), kN, y.data(), kN);
    };
    auto blas = [&] {
        for (size_t i = 0; i < w.size(); ++i) {
            const uint32_t bits = uint32_t(w[i]) << 16;
            std::memcpy(&wide[i], &bits, sizeof(float));
        }
        sgemm(true, int(kM), int(kN), int(kK), x.data(), int(kK), wide.data(), int(kK), y.data(), int(kN));
    };
    const BlasSingleThreadScope one_thread;
    onednn();  // warm-ups: primitive creation, first touch
    blas();
    double best_dnn = 1e30, best_blas = 1e30;
    for (int rep = 0; rep < kReps; ++rep) {  // alternated, so that a slow moment of a noisy machine hits both
        best_dnn = std::min(best_dnn, seconds(onednn));
        best_blas = std::min(best_blas, seconds(blas));
    }
    const double flop = 2.0 * kM * kN * kK;
    r.measured = true;
    r.onednn_gflops = flop / best_dnn / 1e9;
    r.blas_gflops = flop / best_blas / 1e9;
    r.onednn_faster = r.onednn_gflops >= kBf16OneDnnMargin * r.blas_gflops;
    return r;
}

}  // namespace

const Bf16GemmRates& bf16_gemm_rates() {
    static const Bf16GemmRates rates = measure();
    return rates;
}

}  // namespace aviary::cpu
