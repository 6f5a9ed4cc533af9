// The AVX-512 build of the CPU decode engine's matrix-vector kernel (64-byte vectors): the shared body
// matvec_simd_body.inc compiled with -mavx512f -mavx512bw -mavx512vl -mfma (core/CMakeLists.txt). Reached only
// through the run-time check in matvec_scalar.cpp (kernels_avx512).
#ifndef AVIARY_NO_X86_SIMD
#define AVIARY_VEC_BYTES 64
#define AVIARY_SIMD_NS avx512
#define AVIARY_SIMD_NAME "avx512"
#include "matvec_simd_body.inc"

namespace aviary::cpu {
const KernelSet* simd_kernels_avx512() {
    return avx512::kernel_set();
}
}  // namespace aviary::cpu
#else
#include "aviary/core/cpu_engine_kernels.h"
namespace aviary::cpu {
const KernelSet* simd_kernels_avx512() {
    return nullptr;
}
}  // namespace aviary::cpu
#endif
