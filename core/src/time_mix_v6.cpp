// The Finch (RWKV-6, x060) time-mix (time_mix.h): data-dependent token shift (ddlerp through the mix LoRA) and
// data-dependent decay (the decay LoRA), then the shared WKV tail (LM RWKV-v5/src/model.py @86affd7,
// RWKV_Tmix_x060; spec §2.4).
#include <torch/torch.h>

#include "time_mix.h"

#include "aviary/core/mix_lerp.h"
#include "aviary/core/tanh_fused.h"

namespace aviary::model_internal {

TimeMixV6Impl::TimeMixV6Impl(const ModelConfig& c, bool with_state) : WkvTimeMixImpl(c) {
    const int64_t D = c.n_embd, A = c.n_att;
    time_maa_x = register_parameter("time_maa_x", torch::zeros({1, 1, D}));
    time_maa_w = register_parameter("time_maa_w", torch::zeros({1, 1, D}));
    time_maa_k = register_parameter("time_maa_k", torch::zeros({1, 1, D}));
    time_maa_v = register_parameter("time_maa_v", torch::zeros({1, 1, D}));
    time_maa_r = register_parameter("time_maa_r", torch::zeros({1, 1, D}));
    time_maa_g = register_parameter("time_maa_g", torch::zeros({1, 1, D}));
    time_maa_w1 = register_parameter("time_maa_w1", torch::zeros({D, 5 * int64_t(c.mix_lora_rank)}));
    time_maa_w2 = register_parameter("time_maa_w2", torch::zeros({5, c.mix_lora_rank, D}));
    time_decay = register_parameter("time_decay", torch::zeros({1, 1, A}));
    time_decay_w1 = register_parameter("time_decay_w1", torch::zeros({D, c.decay_lora_rank}));
    time_decay_w2 = register_parameter("time_decay_w2", torch::zeros({c.decay_lora_rank, A}));
    register_wkv_parameters(with_state);
}

at::Tensor TimeMixV6Impl::forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) {
    const int64_t B = a.size(0), T = a.size(1), H = cfg.n_head, N = cfg.head_size;
    // ddlerp (spec §2.4): m0 = a + (prev − a)·μ_x; h = tanh(m0·W1) split into w,k,v,r,g blocks; δ_c = h_c·W2[c];
    // x_c = a + (prev − a)·(μ_c + δ_c). Both mixes in mix_lerp (fused on the CPU; bf16 for their products under
    // autocast).
    const at::Tensor m0 = mix_lerp(a, prev, {time_maa_x}, MixForm::Difference)[0];
    const int64_t Lm = cfg.mix_lora_rank;
    at::Tensor h = tanh_fused(at::matmul(m0, time_maa_w1)).view({B * T, 5, Lm}).transpose(0, 1);  // (5, BT, Lm)
    at::Tensor delta = at::bmm(h, time_maa_w2).view({5, B, T, cfg.n_embd});                       // (5, B, T, D)
    const auto x =
        mix_lerp(a, prev, {time_maa_w, time_maa_k, time_maa_v, time_maa_r, time_maa_g}, MixForm::Difference, delta);
    const at::Tensor &xw = x[0], &xk = x[1], &xv = x[2], &xr = x[3], &xg = x[4];
    // w_raw = time_decay + tanh(x_w·Dw1)·Dw2 (fp32); log decay = −exp(w_raw)   (B, T, H, N)
    at::Tensor w_raw = time_decay + at::matmul(tanh_fused(at::matmul(xw, time_decay_w1)), time_decay_w2);
    at::Tensor log_w = -w_raw.exp().view({B, T, H, N});
    return wkv_output(xr, xk, xv, xg, log_w, S, opt);
}

}  // namespace aviary::model_internal
