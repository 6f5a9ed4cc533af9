// The CPU engine's 64-byte-vector kernel layout (the one matvec_avx512.cpp builds) compiled for AVX2 only, so that a
// machine without AVX-512 still runs its 16-lane loops, tails, row blocking and prefetch arithmetic against the
// scalar reference (test_cpu_engine_kernels.cpp). Only the int8 widening load differs from the AVX-512 build: here
// it is two 256-bit conversions (matvec_simd_body.inc). Test-only; built with -mavx2 -mfma (tests/CMakeLists.txt).
#define AVIARY_VEC_BYTES 64
#define AVIARY_SIMD_NS vec64_twin
#define AVIARY_SIMD_NAME "vec64-on-avx2"
#include "../../core/src/matvec_simd_body.inc"

namespace aviary::cpu {
const KernelSet* vec64_twin_kernels() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? vec64_twin::kernel_set() : nullptr;
}
}  // namespace aviary::cpu
