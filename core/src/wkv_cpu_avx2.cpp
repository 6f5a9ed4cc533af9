// The fused CPU WKV loops (wkv_cpu_loops.h) in 8-lane vectors, built with -mavx2 -mfma (core/CMakeLists.txt) and
// reached only where the CPU has both (wkv_cpu.cpp).
#include "wkv_cpu_loops.h"
#ifndef AVIARY_NO_X86_SIMD
#define AVIARY_WKV_LANES 8
#define AVIARY_WKV_NS avx2
#define AVIARY_WKV_NAME "avx2"
#include "wkv_cpu_body.inc"
namespace aviary::wkv_loops {
const Version* version_avx2() {
    return &avx2::version();
}
}  // namespace aviary::wkv_loops
#else
namespace aviary::wkv_loops {
const Version* version_avx2() {
    return nullptr;
}
}  // namespace aviary::wkv_loops
#endif
