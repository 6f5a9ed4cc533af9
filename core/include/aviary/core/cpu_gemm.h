// Matrix products of the CPU engine's prefill on the CPU's matrix units, through oneDNN (Debian's libdnnl, the
// library LibTorch itself uses for bf16): AMX-BF16/INT8 where the CPU has them, else AVX512-BF16/VNNI, else AVX2
// (oneDNN picks its kernels from the ISA it detects; ONEDNN_MAX_CPU_ISA caps it, which the tests use). Each call is
// single-threaded on the calling thread (the engine's pool splits the weight rows across its threads). No LibTorch
// types here.
//
// Y (M, N; row stride ldy) = X (M, K; row stride ldx) · Wᵀ, with W row-major (N, K):
//   bf16: X and W bf16 bit patterns, fp32 accumulation and output (the result equals the fp32 product of the
//         bf16-rounded operands up to the order of the fp32 sums);
//   int8: X int8 codes (one scale per row of X, see quantize_rows_int8) and W int8 codes (one scale per row),
//         exact int32 sums, Y = the sums as fp32 (exact below 2²⁴; the caller applies both scales).
// oneDNN 2.6 takes its fastest kernels (AMX brgemm) only for a dense Y (ldy == N) and no runtime output scales
// (measured here, one thread, M 256 K 768 N 1344: bf16 943 GFLOP/s dense vs 725 strided; int8 1617 GOP/s without
// scales vs 673 with), so the engine writes each block densely into scratch and scales in its epilogue pass.
#pragma once
#include <cstdint>
#include <string>

namespace aviary::cpu {

struct OneDnnInfo {
    bool available = false;    // built with oneDNN (AVIARY_HAVE_DNNL)
    std::string version;       // "2.6.3"
    std::string isa;           // what its kernels use here: "avx512_core_amx", "avx512_core_bf16", "avx2", …
    bool bf16_matmul = false;  // bf16 GEMMs run on native bf16 units (AMX-BF16 or AVX512-BF16)
    bool int8_matmul = false;  // int8 GEMMs run on AMX-INT8 or VNNI
    // bf16 GEMMs run on AMX tiles: the engine's prefill then takes oneDNN for bf16 by default. On AVX512-BF16 alone
    // it asks bf16_gemm_rates() below.
    bool bf16_amx = false;
    // What the gemm_*_onednn functions accept (they throw aviary::Error otherwise): bf16 from AVX-512 on (emulated
    // below AVX512-BF16; oneDNN 2.6 has no AVX2 bf16 matmul); int8 only with VNNI or AMX (without VNNI oneDNN's int8
    // kernels sum byte pairs into saturating int16, measured wrong by up to ~10 % of a logit here).
    bool bf16_supported = false;
    bool int8_supported = false;
};
// Queried once (the ISA is fixed at oneDNN's first use: set ONEDNN_MAX_CPU_ISA before that).
const OneDnnInfo& onednn_info();

// bf16 products on AVX512-BF16 without AMX: oneDNN's bf16 matmul (activations rounded to bf16) against the engine's
// reference path (bf16 weight rows widened to fp32, then the BLAS sgemm). Which is faster is not a matter of the
// instruction sets: on 2 cores oneDNN measured 0.63× the BLAS path on a model-207 Xeon without AMX and 1.9× on an
// AMD EPYC (Zen 4), both with AVX512-BF16 (docs/BENCHMARKS.md). So it is measured once per process, on the calling
// thread, at the shape of one block of the engine's prefill (256 × 768 activations, 448 weight rows), each path best
// of 5 after a warm-up, alternated (~20 ms). Not measured (all zero) with AMX-BF16, without native bf16 units, or
// without a BLAS with a C interface.
struct Bf16GemmRates {
    bool measured = false;
    double onednn_gflops = 0;
    double blas_gflops = 0;
    bool onednn_faster = false;  // measured, and oneDNN at least kBf16OneDnnMargin × the BLAS path
};
// The margin keeps the choice stable on a noisy machine where the two are close (the engine's results differ
// between the paths by the rounding of the activations to bf16).
constexpr double kBf16OneDnnMargin = 1.15;
const Bf16GemmRates& bf16_gemm_rates();

void gemm_bf16_onednn(const uint16_t* X, int64_t M, int64_t K, int64_t ldx, const uint16_t* W, int64_t N, float* Y,
                      int64_t ldy);
void gemm_int8_onednn(const int8_t* X, int64_t M, int64_t K, int64_t ldx, const int8_t* W, int64_t N, float* Y,
                      int64_t ldy);

// fp32 × fp32 -> fp32 (oneDNN's fp32 kernels, fp32 arithmetic throughout): the engine's small LoRA products.
void gemm_f32_onednn(const float* X, int64_t M, int64_t K, int64_t ldx, const float* W, int64_t N, float* Y,
                     int64_t ldy);

// fp32 -> bf16 bit patterns (round to nearest even), n values; with AVX512-BF16 one instruction per 16 values, which
// reads denormal inputs as zero (otherwise fp32_to_bf16's result bit for bit).
void round_to_bf16(const float* x, int64_t n, uint16_t* out);

}  // namespace aviary::cpu
