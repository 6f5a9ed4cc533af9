// The channel mix's element-wise ops (spec §2.6: κ = relu(W_k x_k)², out = σ(W_r x_r) ⊙ (W_v κ)), each one pass
// forward and one backward on the CPU for fp32 and bf16 tensors (channel_mix_ops.cpp), instead of relu, square,
// sigmoid, a product and their autograd nodes; elsewhere (CUDA, other dtypes) those LibTorch ops themselves.
#pragma once
#include <ATen/core/Tensor.h>

namespace aviary {

// relu(x)², in x's dtype.
at::Tensor relu_square(const at::Tensor& x);

// σ(r) ⊙ v for r, v of one shape, in their promoted dtype; σ and the product are taken in fp32 and rounded once.
at::Tensor sigmoid_gate(const at::Tensor& r, const at::Tensor& v);

}  // namespace aviary
