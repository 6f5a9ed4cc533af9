// What the fused CPU training ops (mix_lerp.cpp, norm_gate.cpp, relu_square.cpp, adamw_fused.cpp) share: one loop
// body for fp32 and bf16 tensors, element ranges for the threads, and the dtype of a matrix product's input. Private
// to core/src.
#pragma once
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>

#include "aviary/core/threads.h"

namespace aviary::fused {

// Calls fn with a null pointer of dtype t's storage type: float*, or uint16_t* (bf16 bits) for kBFloat16.
template <class Fn>
void with_storage(at::ScalarType t, Fn&& fn) {
    if (t == at::kBFloat16)
        fn(static_cast<uint16_t*>(nullptr));
    else
        fn(static_cast<float*>(nullptr));
}

template <class T>
T* data_as(const at::Tensor& t) {
    return static_cast<T*>(t.data_ptr());
}

// fn(i0, i1) over [0, n) in ranges of kGrain elements shared out by parallel_for_shares (threads.h): for
// element-wise loops, whose results do not depend on the split.
constexpr int64_t kGrain = 16384;
template <class Fn>
void for_element_ranges(int64_t n, Fn&& fn) {
    parallel_for_shares((n + kGrain - 1) / kGrain,
                        [&](int64_t b0, int64_t b1) { fn(b0 * kGrain, std::min(n, b1 * kGrain)); });
}

// The dtype a CPU matrix product takes its input in: bf16 under CPU bf16 autocast (which would cast it), else fp32.
// An op whose output only feeds matrix products returns it in this dtype.
inline at::ScalarType matmul_input_dtype() {
    return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 ? at::kBFloat16
                                                                                                     : at::kFloat;
}

}  // namespace aviary::fused
