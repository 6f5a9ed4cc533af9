// The AVX-512 VNNI kernel set: the avx512 set (matvec_avx512.cpp) with its int8 batch-1 products built again from the
// same body (matvec_simd_body.inc) with -mavx512vnni, so their multiply-add is one vpdpwssd instead of vpmaddwd +
// vpaddd (madd_w). Every other call goes to the avx512 set's own code, so the two sets differ in that one loop and
// every result is the same bit for bit (exact integer sums). Reached only through the run-time check in
// matvec_scalar.cpp (kernels_avx512vnni).
#ifndef AVIARY_NO_X86_SIMD
#define AVIARY_VEC_BYTES 64
#define AVIARY_SIMD_NS avx512vnni
#define AVIARY_SIMD_OWN_SET 1
#include "matvec_simd_body.inc"

namespace aviary::cpu {
const KernelSet* simd_kernels_avx512();
namespace avx512vnni {
namespace {

void matvec_vnni(const MatView& w, const float* x, int64_t xs, int64_t batch, float* y, int64_t ys, int64_t r0,
                 int64_t r1) {
    if (w.type == WeightType::I8 && batch == 1) return matvec_i8(w, x, xs, batch, y, ys, r0, r1);
    static const MatvecFn plain = simd_kernels_avx512()->matvec;
    plain(w, x, xs, batch, y, ys, r0, r1);
}

}  // namespace
}  // namespace avx512vnni

const KernelSet* simd_kernels_avx512vnni() {
    static const KernelSet set{"avx512vnni", &avx512vnni::matvec_vnni};
    return &set;
}
}  // namespace aviary::cpu
#else
#include "aviary/core/cpu_engine_kernels.h"
namespace aviary::cpu {
const KernelSet* simd_kernels_avx512vnni() {
    return nullptr;
}
}  // namespace aviary::cpu
#endif
