// The token shift's mixes (spec §2.2, §2.4, §2.6): from a (B, T, D) and prev, its copy shifted by one token, one
// x_c per mix μ_c (each D values, e.g. a (1, 1, D) parameter):
//   CurrentWeighted (RWKV-4 and 5):  x_c = a·μ_c + prev·(1 − μ_c)
//   Difference (RWKV-6):             x_c = a + (prev − a)·μ_c, or with per-row deltas (RWKV-6's data-dependent
//                                    token shift, spec §2.4) x_c = a + (prev − a)·(μ_c + δ_c), delta (K, *a.shape)
//                                    holding δ_c in delta[c], fp32 or bf16 (it gets its gradient in its dtype)
// Where a, prev and the mixes are fp32 on the CPU (the deltas fp32 or bf16), all of them come from one fused pass with
// one backward pass (mix_lerp.cpp), with the bits of those expressions in the forward direction; elsewhere from the
// expressions themselves. Every x_c feeds a matrix product: under CPU bf16 autocast the fused pass returns them in
// bf16, the bits of the cast that product would make.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace aviary {

enum class MixForm { CurrentWeighted, Difference };

std::vector<at::Tensor> mix_lerp(const at::Tensor& a, const at::Tensor& prev, const std::vector<at::Tensor>& mixes,
                                 MixForm form, const at::Tensor& delta = at::Tensor());

}  // namespace aviary
