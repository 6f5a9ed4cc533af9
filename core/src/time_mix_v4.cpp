// The RWKV-4 (v4neo) time-mix (time_mix.h): static lerps, r = σ(W_r x_r), the (aa, bb, pp) recurrence of wkv4.cpp
// with w = −exp(time_decay), u = time_first, out = W_o (r ⊙ wkv) (official rwkv pip att_seq/att_one, version 4).
#include <torch/torch.h>

#include "aviary/core/wkv4.h"
#include "time_mix.h"

namespace aviary::model_internal {

TimeMixV4Impl::TimeMixV4Impl(const ModelConfig& c) : TimeMixImpl(c) {
    const int64_t D = c.n_embd, A = c.n_att;
    time_mix_k = register_parameter("time_mix_k", torch::zeros({1, 1, D}));
    time_mix_v = register_parameter("time_mix_v", torch::zeros({1, 1, D}));
    time_mix_r = register_parameter("time_mix_r", torch::zeros({1, 1, D}));
    time_decay = register_parameter("time_decay", torch::zeros({A}));
    time_first = register_parameter("time_first", torch::zeros({A}));
    receptance = register_module("receptance", Matrix(D, A));
    key = register_module("key", Matrix(D, A));
    value = register_module("value", Matrix(D, A));
    output = register_module("output", Matrix(A, D));
}

// S (B, 3, A) = (aa, bb, pp)
at::Tensor TimeMixV4Impl::forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions&) {
    // x_c = a·μ_c + prev·(1 − μ_c); r = σ(W_r x_r)
    const auto x = mix_lerp(a, prev, {time_mix_k, time_mix_v, time_mix_r}, MixForm::CurrentWeighted);
    const at::Tensor &xk = x[0], &xv = x[1], &xr = x[2];
    at::Tensor r = at::sigmoid(matmul_w(xr, receptance));
    at::Tensor k = matmul_w(xk, key), v = matmul_w(xv, value);  // (B, T, A) fp32 (bf16 under autocast)
    // the recurrence in fp32 also under bf16 training's autocast, as the WKV's (wkv_dispatch.cpp)
    auto [y, S_out] = [&] {
        c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
        return wkv4_parallel(-time_decay.exp(), time_first, k.to(at::kFloat), v.to(at::kFloat), S);
    }();
    S = S_out;
    return matmul_w(r * y, output);
}

}  // namespace aviary::model_internal
