// torch::optim::AdamW's step for CPU fp32 parameters in one pass per parameter (adamw_fused.cpp), instead of its
// eight LibTorch ops per parameter, with the optimizer's own state (so saving, loading and LibTorch's step see the
// same exp_avg, exp_avg_sq and step). Private to core/src: the Trainer's.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/StringUtil.h>
#include <torch/version.h>

namespace torch::optim {
class AdamW;
}

namespace aviary {

// The step for every parameter of optim when all are CPU fp32 and contiguous (their gradients and state too) and
// AMSGrad is off; returns false, having changed nothing, otherwise (call optim.step() then).
bool adamw_step_fused(torch::optim::AdamW& optim);

// torch::optim keys per-parameter state by the TensorImpl: a string of its address in LibTorch 1.x, the address
// itself in 2.x.
inline auto optimizer_state_key(const at::Tensor& p) {
#if TORCH_VERSION_MAJOR >= 2
    return static_cast<void*>(p.unsafeGetTensorImpl());
#else
    return c10::guts::to_string(p.unsafeGetTensorImpl());
#endif
}

}  // namespace aviary
