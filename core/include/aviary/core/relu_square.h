// The channel mix's ReLU² (spec §2.6: κ = relu(W_k x_k)²), one pass forward and one backward on the CPU for fp32 and
// bf16 tensors (relu_square.cpp) instead of relu, square and their autograd nodes; elsewhere (CUDA, other dtypes)
// those LibTorch ops themselves. (The gate σ(W_r x_r) ⊙ (W_v κ) stays LibTorch's: a fused version with vec_math.h's
// σ was slower than its vectorised sigmoid and product, 0.79 against 0.45 ms forward and backward for (4, 512, 256)
// bf16 on 2 Zen 4 cores.)
#pragma once
#include <ATen/core/Tensor.h>

namespace aviary {

// relu(x)², in x's dtype.
at::Tensor relu_square(const at::Tensor& x);

}  // namespace aviary
