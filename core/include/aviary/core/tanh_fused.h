// tanh for RWKV-6's LoRA hidden layers (spec §2.4: the mix LoRA's tanh(m0·W1) and the decay LoRA's tanh(x_w·Dw1)),
// one vectorised pass forward and one backward on the CPU for fp32 and bf16 tensors (tanh_fused.cpp), on vec_math.h's
// tanh_approx (at most 2.7e-7 relative in fp32); elsewhere (CUDA, other dtypes) at::tanh. Debian's LibTorch runs
// at::tanh at ~2 ns an element in either dtype and on one thread: ~5 % of a vision stage-2 bf16 step on 2 Zen 4 cores.
#pragma once
#include <ATen/core/Tensor.h>

namespace aviary {

// tanh(x), in x's dtype.
at::Tensor tanh_fused(const at::Tensor& x);

}  // namespace aviary
