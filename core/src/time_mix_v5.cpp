// The Eagle (RWKV-5.2, x052) time-mix (time_mix.h): static lerps that weight the current token (pitfall 1) and a
// static per-channel decay, then the shared WKV tail (LM RWKV-v5/src/model.py @86affd7, RWKV_Tmix_x052; spec §2.2).
#include <torch/torch.h>

#include "time_mix.h"

namespace aviary::model_internal {

TimeMixV5Impl::TimeMixV5Impl(const ModelConfig& c, bool with_state) : WkvTimeMixImpl(c) {
    const int64_t D = c.n_embd, H = c.n_head, N = c.head_size;
    time_mix_k = register_parameter("time_mix_k", torch::zeros({1, 1, D}));
    time_mix_v = register_parameter("time_mix_v", torch::zeros({1, 1, D}));
    time_mix_r = register_parameter("time_mix_r", torch::zeros({1, 1, D}));
    time_mix_g = register_parameter("time_mix_g", torch::zeros({1, 1, D}));
    time_decay = register_parameter("time_decay", torch::zeros({H, N}));
    register_wkv_parameters(with_state);
}

at::Tensor TimeMixV5Impl::forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) {
    const int64_t H = cfg.n_head, N = cfg.head_size;
    // x_c = a·μ_c + prev·(1 − μ_c)   (v5 lerp weights the current token; pitfall 1)
    const auto x = mix_lerp(a, prev, {time_mix_k, time_mix_v, time_mix_r, time_mix_g}, MixForm::CurrentWeighted);
    const at::Tensor &xk = x[0], &xv = x[1], &xr = x[2], &xg = x[3];
    // decay = exp(−exp(time_decay)), static per channel; log decay = −exp(w)   (1, 1, H, N)
    at::Tensor log_w = -time_decay.exp().view({1, 1, H, N});
    return wkv_output(xr, xk, xv, xg, log_w, S, opt);
}

}  // namespace aviary::model_internal
