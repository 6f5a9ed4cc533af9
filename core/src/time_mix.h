// The time-mix (attention) module of each RWKV version, one class and one file per version as rwkv.cpp builds one
// graph per version: RWKV-4 (time_mix_v4.cpp), Eagle x052 (time_mix_v5.cpp), Finch x060 (time_mix_v6.cpp); the
// official RWKV_Tmix_x052/x060 of LM RWKV-v5/src/model.py @86affd7 and rwkv pip's att_seq (v4). Eagle and Finch share
// the matrix-valued WKV, its GroupNorm · gate · output tail and the optional time_state (WkvTimeMixImpl, time_mix.cpp).
// Parameters keep the official names and registration order, so state dicts round-trip. Private to core/src.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>

#include "aviary/core/config.h"
#include "aviary/core/model.h"
#include "model_layers.h"

namespace aviary::model_internal {

struct TimeMixImpl : torch::nn::Module {
    explicit TimeMixImpl(const ModelConfig& c) : cfg(c) {}
    // a = LN1(x) (B, T, D); prev = shifted a (B, T, D); S the layer's WKV state, read and replaced. -> (B, T, D)
    virtual at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) = 0;

    ModelConfig cfg;
    at::Tensor time_state;  // (H, N_value, N_key): Eagle/Finch with state tuning only (Model::add_time_state)
};

// The time-mix of c.version (4, 5 or 6); with_state registers time_state (Eagle/Finch).
std::shared_ptr<TimeMixImpl> make_time_mix(const ModelConfig& c, bool with_state);

// RWKV-4 (v4neo): static lerps, per-channel decay and bonus, no gate, no ln_x. S (B, 3, A) = (aa, bb, pp).
struct TimeMixV4Impl : TimeMixImpl {
    explicit TimeMixV4Impl(const ModelConfig& c);
    at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) override;

    at::Tensor time_mix_k, time_mix_v, time_mix_r, time_decay, time_first;  // (1, 1, D) ×3, (A), (A)
    Matrix receptance{nullptr}, key{nullptr}, value{nullptr}, output{nullptr};
};

// What Eagle and Finch share: bonus u (time_faaaa), time_state, the receptance/key/value/output/gate matrices and
// ln_x, and everything after the token mixing. S (B, H, N, N).
struct WkvTimeMixImpl : TimeMixImpl {
    at::Tensor time_faaaa;  // (H, N)
    Matrix receptance{nullptr}, key{nullptr}, value{nullptr}, output{nullptr}, gate{nullptr};
    torch::nn::GroupNorm ln_x{nullptr};

protected:
    using TimeMixImpl::TimeMixImpl;
    // Registers time_faaaa, time_state (with_state), the matrices and ln_x: called after the version's own
    // parameters, which is the official order.
    void register_wkv_parameters(bool with_state);
    // The mixed inputs (B, T, D) and the log decay (broadcastable to (B, T, H, N)) -> the block's output (B, T, D).
    at::Tensor wkv_output(const at::Tensor& xr, const at::Tensor& xk, const at::Tensor& xv, const at::Tensor& xg,
                          const at::Tensor& log_w, at::Tensor& S, const ModelOptions& opt);
};

// Eagle (x052): static lerps weighting the current token, static per-channel decay.
struct TimeMixV5Impl : WkvTimeMixImpl {
    TimeMixV5Impl(const ModelConfig& c, bool with_state);
    at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) override;

    at::Tensor time_mix_k, time_mix_v, time_mix_r, time_mix_g;  // (1, 1, D)
    at::Tensor time_decay;                                      // (H, N)
};

// Finch (x060): data-dependent lerps (ddlerp, LoRA W1/W2) and data-dependent decay (decay LoRA).
struct TimeMixV6Impl : WkvTimeMixImpl {
    TimeMixV6Impl(const ModelConfig& c, bool with_state);
    at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) override;

    at::Tensor time_maa_x, time_maa_w, time_maa_k, time_maa_v, time_maa_r, time_maa_g;  // (1, 1, D)
    at::Tensor time_maa_w1, time_maa_w2;                                                // (D, 5·Lm), (5, Lm, D)
    at::Tensor time_decay, time_decay_w1, time_decay_w2;                                // (1, 1, A), (D, Ld), (Ld, A)
};

}  // namespace aviary::model_internal
