// Matrix-vector kernels of the CPU decode engine (cpu_engine.h): y = W·x for a row range of a row-major (out, in)
// weight in fp32, bf16 (fp32 accumulate) or int8 with one fp32 scale per output row, for a small batch of x.
// A plain scalar reference (matvec_scalar.cpp) sits beside the SIMD builds (matvec_avx2.cpp, matvec_avx512.cpp),
// which are chosen at run time by what the CPU supports (__builtin_cpu_supports). No LibTorch types here.
#pragma once
#include <cstdint>
#include <string>

namespace aviary::cpu {

enum class WeightType { F32, BF16, I8 };

// A row-major (rows = out, cols = in) weight matrix. BF16 data are raw bfloat16 bit patterns (uint16);
// I8 data are int8 with W[r][c] = data[r][c]·scale[r] (symmetric, per output channel).
struct MatView {
    WeightType type = WeightType::F32;
    const void* data = nullptr;
    const float* scale = nullptr;  // I8 only: (rows)
    int64_t rows = 0, cols = 0;
};

// For every batch item b < batch and row r in [row_begin, row_end):
//   y[b·y_stride + r] = Σ_c W[r][c] · x[b·x_stride + c]
using MatvecFn = void (*)(const MatView& w, const float* x, int64_t x_stride, int64_t batch, float* y, int64_t y_stride,
                          int64_t row_begin, int64_t row_end);

struct KernelSet {
    const char* name = "";  // "scalar", "avx2", "avx512"
    MatvecFn matvec = nullptr;
};

// The plain reference (double-free scalar loops, fp32 accumulation in index order).
const KernelSet& kernels_scalar();
// The SIMD builds; nullptr when this CPU lacks the instructions (or the compiler could not build them).
const KernelSet* kernels_avx2();
const KernelSet* kernels_avx512();
// The best set this CPU supports; $AVIARY_CPU_KERNEL = scalar|avx2|avx512 forces one (an error when the CPU lacks
// it). Chosen once per process.
const KernelSet& kernels_best();
// Looks a set up by name ("scalar", "avx2", "avx512", "auto"); throws aviary::Error when unknown or unsupported.
const KernelSet& kernels_named(const std::string& name);

// bfloat16 <-> fp32 (round to nearest even, NaN kept quiet), as LibTorch's c10::BFloat16.
uint16_t fp32_to_bf16(float f);
float bf16_to_fp32(uint16_t h);

// Symmetric per-row int8 quantisation: scale[r] = max_c |w[r][c]| / 127 (1 when the row is all zeros),
// q[r][c] = round(w[r][c] / scale[r]) in [-127, 127]. w is (rows, cols) row-major fp32.
void quantize_rows_int8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale);

}  // namespace aviary::cpu
