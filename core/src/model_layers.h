// Building blocks shared by the model's modules (model.cpp, time_mix*.cpp, model_lora.cpp): the bias-free matrix
// with its optional LoRA adapter, the fp32-output matmul, LayerNorm and the token shift (LM RWKV-v5/src/model.py
// @86affd7; spec §2). Private to core/src; nothing outside it includes this.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>

#include "aviary/core/mix_lerp.h"

namespace aviary::model_internal {

constexpr double kLayerNormEps = 1e-5;
constexpr double kGroupNormEps = 64e-5;  // = eps 1e-5 on x / head_size_divisor 8 (spec §2.2, pitfall 5)

// y = x · Wᵀ with W in its storage dtype and an fp32 result.
inline at::Tensor matmul_w(const at::Tensor& x, const at::Tensor& weight) {
    if (weight.scalar_type() == at::kFloat) return at::linear(x, weight);
    return at::linear(x.to(weight.scalar_type()), weight).to(at::kFloat);
}

// A bias-free linear layer that holds only `weight` (out, in), left uninitialised: from_tensors sets every
// parameter (infer_config rejects missing keys), and torch::nn::Linear's serial Kaiming init would cost tens of
// seconds for a 7B shape. Same parameter name ("<name>.weight") as nn.Linear, so state dicts round-trip.
struct MatrixImpl : torch::nn::Module {
    MatrixImpl(int64_t in, int64_t out) { weight = register_parameter("weight", torch::empty({out, in})); }
    at::Tensor weight;  // (out, in)
    // Optional LoRA adapter (Model::add_lora, model_lora.cpp), registered as "lora_A" (r, in) and "lora_B" (out, r).
    std::shared_ptr<MatrixImpl> lora_A, lora_B;
    double lora_scale = 0;  // α / r
};
TORCH_MODULE(Matrix);

// y = x · Wᵀ + (α/r)·(x · Aᵀ) · Bᵀ when the matrix carries a LoRA adapter (the adapter in fp32).
inline at::Tensor matmul_w(const at::Tensor& x, const Matrix& m) {
    at::Tensor y = matmul_w(x, m->weight);
    if (!m->lora_A) return y;
    return y + at::linear(at::linear(x, m->lora_A->weight), m->lora_B->weight) * m->lora_scale;
}

inline at::Tensor layer_norm(const at::Tensor& x, const torch::nn::LayerNorm& ln) {
    return at::layer_norm(x, {x.size(-1)}, ln->weight, ln->bias, kLayerNormEps);
}

using aviary::mix_lerp;
using aviary::MixForm;  // the token shift's static mixes (aviary/core/mix_lerp.h)

// Token shift: the previous token's vector for every position, the first taken from the state.
// x (B, T, D), prev0 (B, D) -> (B, T, D)
inline at::Tensor shift(const at::Tensor& x, const at::Tensor& prev0) {
    if (x.size(1) == 1) return prev0.unsqueeze(1);
    return at::cat({prev0.unsqueeze(1), x.narrow(1, 0, x.size(1) - 1)}, 1);
}

}  // namespace aviary::model_internal
