// What the fused CPU training ops (mix_lerp.cpp, norm_gate.cpp, relu_square.cpp) share: one loop body for fp32
// and bf16 tensors, and the dtype of a matrix product's input. Private to core/src.
#pragma once
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

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

// The dtype a CPU matrix product takes its input in: bf16 under CPU bf16 autocast (which would cast it), else fp32.
// An op whose output only feeds matrix products returns it in this dtype.
inline at::ScalarType matmul_input_dtype() {
    return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 ? at::kBFloat16
                                                                                                     : at::kFloat;
}

}  // namespace aviary::fused
