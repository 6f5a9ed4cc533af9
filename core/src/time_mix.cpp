// What the Eagle and Finch time-mix modules share (time_mix.h): the WKV over heads, GroupNorm per head, the SiLU gate
// and the output matrix (LM RWKV-v5/src/model.py @86affd7, RWKV_Tmix_x052/x060 forward after the mixing; spec §2.2),
// and the choice of module by version.
#include "time_mix.h"

#include <torch/torch.h>

#include "aviary/core/norm_gate.h"
#include "aviary/core/wkv.h"

namespace aviary::model_internal {

std::shared_ptr<TimeMixImpl> make_time_mix(const ModelConfig& c, bool with_state) {
    if (c.version == 4) return std::make_shared<TimeMixV4Impl>(c);
    if (c.version == 5) return std::make_shared<TimeMixV5Impl>(c, with_state);
    return std::make_shared<TimeMixV6Impl>(c, with_state);
}

void WkvTimeMixImpl::register_wkv_parameters(bool with_state) {
    const int64_t D = cfg.n_embd, A = cfg.n_att, H = cfg.n_head, N = cfg.head_size;
    time_faaaa = register_parameter("time_faaaa", torch::zeros({H, N}));
    if (with_state) time_state = register_parameter("time_state", torch::zeros({H, N, N}));
    receptance = register_module("receptance", Matrix(D, A));
    key = register_module("key", Matrix(D, A));
    value = register_module("value", Matrix(D, A));
    output = register_module("output", Matrix(A, D));
    gate = register_module("gate", Matrix(D, A));
    ln_x = register_module("ln_x", torch::nn::GroupNorm(torch::nn::GroupNormOptions(H, A).eps(kGroupNormEps)));
}

at::Tensor WkvTimeMixImpl::wkv_output(const at::Tensor& xr, const at::Tensor& xk, const at::Tensor& xv,
                                      const at::Tensor& xg, const at::Tensor& log_w, at::Tensor& S,
                                      const ModelOptions& opt) {
    const int64_t B = xr.size(0), T = xr.size(1), H = cfg.n_head, N = cfg.head_size, A = cfg.n_att;
    at::Tensor r = matmul_w(xr, receptance).view({B, T, H, N});
    at::Tensor k = matmul_w(xk, key).view({B, T, H, N});
    at::Tensor v = matmul_w(xv, value).view({B, T, H, N});
    at::Tensor z = matmul_w(xg, gate);  // (B, T, A), the gate before its SiLU
    auto [y, S_out] = wkv(r, k, v, log_w, time_faaaa, S, opt.wkv, opt.wkv_chunk);
    S = S_out;
    // GroupNorm over each head's N channels, eps 64e-5, per-channel affine; times SiLU(z); then output.
    return matmul_w(norm_gate(y.reshape({B, T, A}), z, ln_x->weight, ln_x->bias, H, kGroupNormEps), output);
}

}  // namespace aviary::model_internal
