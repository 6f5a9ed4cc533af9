// The Eagle/Finch time mix's output before its matrix (spec §2.2, LM RWKV-v5/src/model.py @86affd7, ln_x and the
// gate): GroupNorm over each head's N channels of the WKV's y, with per-channel affine γ, β, times the SiLU of the
// gate's pre-activation z:
//   o = (γ·(y − mean_h)·rstd_h + β) ⊙ z·σ(z),   rstd_h = 1/√(var_h + eps)   (mean, biased var over the head's N)
// Where y is fp32 on the CPU (z fp32 or bf16), one pass forward and one backward (norm_gate.cpp) instead of
// group_norm, silu and a product with their autograd nodes and casts; elsewhere those LibTorch ops themselves.
// o feeds the output matrix: under CPU bf16 autocast the fused pass returns it in bf16 (what that product would
// take), else fp32.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace aviary {

// y, z (..., H·N); weight, bias (H·N).
at::Tensor norm_gate(const at::Tensor& y, const at::Tensor& z, const at::Tensor& weight, const at::Tensor& bias,
                     int64_t heads, double eps);

}  // namespace aviary
