// The AVX2 + FMA build of the CPU decode engine's matrix-vector kernel (32-byte vectors): the shared body
// matvec_simd_body.inc compiled with -mavx2 -mfma (core/CMakeLists.txt). Reached only through the run-time check in
// matvec_scalar.cpp (kernels_avx2), so the rest of the library stays baseline x86-64.
#ifndef AVIARY_NO_X86_SIMD
#define AVIARY_VEC_BYTES 32
#define AVIARY_SIMD_NS avx2
#define AVIARY_SIMD_NAME "avx2"
#include "matvec_simd_body.inc"

namespace aviary::cpu {
const KernelSet* simd_kernels_avx2() {
    return avx2::kernel_set();
}
}  // namespace aviary::cpu
#else
#include "aviary/core/cpu_engine_kernels.h"
namespace aviary::cpu {
const KernelSet* simd_kernels_avx2() {
    return nullptr;
}
}  // namespace aviary::cpu
#endif
