// The fused CPU WKV loops (wkv_cpu_loops.h) in 16-lane vectors, built with -mavx512f -mfma (core/CMakeLists.txt) and
// reached only where the CPU has AVX-512F and FMA (wkv_cpu.cpp).
#include "wkv_cpu_loops.h"
#ifndef AVIARY_NO_X86_SIMD
#define AVIARY_WKV_LANES 16
#define AVIARY_WKV_NS avx512
#define AVIARY_WKV_NAME "avx512"
#include "wkv_cpu_body.inc"
namespace aviary::wkv_loops {
const Version* version_avx512() {
    return &avx512::version();
}
}  // namespace aviary::wkv_loops
#else
namespace aviary::wkv_loops {
const Version* version_avx512() {
    return nullptr;
}
}  // namespace aviary::wkv_loops
#endif
