// Bidirectional WKV of the RWKV-6 (Finch) matrix state, as Bi-WKV6 in ../shared/reference/multimodal_spec.md B.1:
// y_t = forward scan (including the bonus u at t) + backward scan (excluding t). Per head, key j, value i:
//   forward:  y⁺_t[i] = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S⁺_t[j][i]),  S⁺_{t+1} = diag(w_t)·S⁺_t + k_tᵀv_t,  S⁺_0 = 0
//   backward: y⁻_t[i] = Σ_j r_t[j]·S⁻_t[j][i],                          S⁻_{t−1} = diag(w_t)·S⁻_t + k_tᵀv_t,  S⁻_{T−1}
//   = 0
// so token i contributes to t through the decays of the tokens strictly between them, in either direction
// (w_t = exp(log_w_t)). Our reading of the VRWKV6 kernel; the mirror-symmetric form is what we implement and test.
#pragma once
#include <ATen/core/Tensor.h>

namespace aviary::audio {

// r, k, v, log_w (B, T, H, N); u (H, N). Returns y (B, T, H, N) fp32. Autograd-capable: core's WKV (aviary::wkv)
// on the sequence with u, plus core's WKV on the time-reversed sequence with u = 0, reversed back.
at::Tensor bi_wkv(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                  const at::Tensor& u);
// Plain per-timestep loops over both scans in float64 (the oracle; no autograd). Returns fp32.
at::Tensor bi_wkv_reference(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                            const at::Tensor& u);

}  // namespace aviary::audio
