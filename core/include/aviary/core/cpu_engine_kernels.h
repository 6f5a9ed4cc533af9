// Matrix-vector kernels of the CPU decode engine (cpu_engine.h): y = W·x for a row range of a row-major (out, in)
// weight in fp32, bf16 (fp32 accumulate) or int8 with one fp32 scale per output row, for a small batch of x.
// A plain scalar reference (matvec_scalar.cpp) sits beside the SIMD builds (matvec_avx2.cpp, matvec_avx512.cpp),
// which are chosen at run time by what the CPU supports (__builtin_cpu_supports). No LibTorch types here.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/vec_math.h"  // fp32_to_bf16, bf16_to_fp32

namespace aviary::cpu {

enum class WeightType { F32, BF16, I8 };

// A row-major (rows = out, cols = in) weight matrix. BF16 data are raw bfloat16 bit patterns (uint16);
// I8 data are int8 with W[r][c] = data[r][c]·scale[r] (symmetric, per output channel).
struct MatView {
    WeightType type = WeightType::F32;
    const void* data = nullptr;
    const float* scale = nullptr;  // I8 only: (rows)
    int64_t rows = 0, cols = 0;
    // Products with this matrix keep fp32 activations on every path (the CPU engine's LoRAs, whatever their storage);
    // the decode kernels always do, so only the engine's prefill GEMMs read it.
    bool fp32_activations = false;
};

// For every batch item b < batch and row r in [row_begin, row_end):
//   y[b·y_stride + r] = Σ_c W[r][c] · x[b·x_stride + c]
// fp32 and bf16 weights multiply fp32 activations (fp32 accumulation). int8 weights multiply int16 activation codes:
// each call quantises each x vector with one scale, s = max_c |x[c]| / 32767, code[c] = round-half-even(x[c]·(32767 /
// max|x|)) (quantize_activations_int16), sums Σ_c q[r][c]·code[c] exactly in integers, and returns
// int8_row_output(sum, s, scale[r]); every kernel set gives the same value bit for bit. The activation rounding adds
// at most s/2·Σ_c|W[r][c]| to the result (relative ~1e-4 for layer-normalised inputs, far below the int8 weights'
// own rounding).
using MatvecFn = void (*)(const MatView& w, const float* x, int64_t x_stride, int64_t batch, float* y, int64_t y_stride,
                          int64_t row_begin, int64_t row_end);

struct KernelSet {
    const char* name = "";  // "scalar", "avx2", "avx512", "avx512vnni"
    MatvecFn matvec = nullptr;
};

// The plain reference (double-free scalar loops, fp32 accumulation in index order).
const KernelSet& kernels_scalar();
// The SIMD builds; nullptr when this CPU lacks the instructions (or the compiler could not build them).
const KernelSet* kernels_avx2();
const KernelSet* kernels_avx512();
const KernelSet* kernels_avx512vnni();  // avx512 with the int8 multiply-adds as vpdpwssd (AVX512-VNNI)
// Every set this CPU supports, scalar first, best last (what tests and benchmarks enumerate).
std::vector<const KernelSet*> kernels_available();
// The best set this CPU supports; $AVIARY_CPU_KERNEL = scalar|avx2|avx512|avx512vnni forces one (an error when the
// CPU lacks it). Chosen once per process.
const KernelSet& kernels_best();
// Looks a set up by name ("scalar", "avx2", "avx512", "avx512vnni", "auto"); throws aviary::Error when unknown or
// unsupported.
const KernelSet& kernels_named(const std::string& name);

// int8 kernels: activation codes of x (n values) into codes; returns the scale s (1 when x is all zeros, NaN when x
// holds a NaN or an infinity: then every code is 0 and every output NaN). Each kernel set has its own copy with
// these exact semantics (the SIMD ones vectorised).
float quantize_activations_int16(const float* x, int64_t n, int16_t* codes);
// Integer sums are flushed into an exact int64 at least every kInt8Block columns (int32 lanes cannot overflow).
constexpr int64_t kInt8Block = 1024;
inline float int8_row_output(int64_t sum, float activation_scale, float row_scale) {
    return (static_cast<float>(sum) * activation_scale) * row_scale;
}

// Symmetric per-row int8 quantisation: scale[r] = max_c |w[r][c]| / 127 over the non-NaN values (1 when the row is
// all zeros), q[r][c] = w[r][c]·(1/scale[r]) rounded half to even, clamped to [-127, 127] (0 for NaN). w is (rows,
// cols) row-major fp32. Vectorised for AVX-512 or AVX2 where the CPU has them (cpuid); every version gives the same
// codes and scales (tests/core/test_cpu_engine_kernels.cpp).
void quantize_rows_int8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale);
// The versions this CPU runs ("generic", the plain loop, first; "avx2", "avx512"), and one of them by name (throws
// std::invalid_argument for another): for tests and benchmarks.
std::vector<std::string> quantize_rows_int8_versions();
void quantize_rows_int8_version(const std::string& name, const float* w, int64_t rows, int64_t cols, int8_t* q,
                                float* scale);

// The prefill's products with a short inner dimension (the RWKV-6 LoRAs' second halves: K = 32 or 64 inputs, D
// outputs), where a GEMM library runs at a fraction of its rate: one tile of m ≤ kShortKTileRows rows and
// nb ≤ kShortKTileCols columns,
//   out[r·out_stride + c] = Σ_k h[r·h_stride + k] · w[k·N + c]   (r < m, c < nb),
// w k-major (K rows of N, as the checkpoint stores the LoRAs; the caller offsets it to the tile's first column). Each
// output is one chain of fused multiply-adds over k = 0, 1, …, K − 1 from zero, so every version gives the same bits.
// Versions by kernel set name: "avx512" and "avx512vnni", "avx2", "baseline" (the plain loop, std::fma from libm),
// else (the scalar set) the plain loop built for FMA3 where the CPU has it, the baseline loop where it has not.
constexpr int64_t kShortKTileRows = 4, kShortKTileCols = 64;
using ShortKTileFn = void (*)(const float* h, int64_t h_stride, int64_t m, const float* w, int64_t K, int64_t N,
                              int64_t nb, float* out, int64_t out_stride);
ShortKTileFn short_k_tile_for(const std::string& kernel_set);

}  // namespace aviary::cpu
