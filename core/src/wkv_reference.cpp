// WKV reference: the per-timestep recurrence of spec §2.5.1, in fp32 LibTorch ops (autograd for free).
// It is the oracle for the chunked CPU path and the CUDA kernels, and the path for T = 1.
//   y_t[i] = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S_{t−1}[j][i]);   S_t = k_tᵀv_t + diag(w_t)·S_{t−1}
#include <ATen/ATen.h>

#include "aviary/core/wkv.h"
#include "wkv_common.h"

namespace aviary {

std::pair<at::Tensor, at::Tensor> wkv_reference(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                                const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
    const auto s = detail::check_wkv_inputs(r, k, v, log_w, u, state);
    const auto f32 = r.options().dtype(at::kFloat);
    at::Tensor rf = r.to(at::kFloat), kf = k.to(at::kFloat), vf = v.to(at::kFloat);
    at::Tensor w = log_w.to(at::kFloat).exp().expand({s.B, s.T, s.H, s.N});  // (B, T, H, N) decay
    at::Tensor uf = u.to(at::kFloat).view({1, s.H, s.N, 1});                 // (1, H, N, 1) over key j
    at::Tensor S = state.defined() ? state.to(at::kFloat) : at::zeros({s.B, s.H, s.N, s.N}, f32);  // (B, H, Nk, Nv)
    std::vector<at::Tensor> ys;
    ys.reserve(s.T);
    for (int64_t t = 0; t < s.T; ++t) {
        at::Tensor kt = kf.select(1, t), vt = vf.select(1, t), rt = rf.select(1, t);  // (B, H, N)
        at::Tensor a = kt.unsqueeze(-1) * vt.unsqueeze(-2);                           // k_tᵀ v_t  (B, H, N, N)
        // y_t = r_t · (diag(u)·a_t + S_{t−1})   (sum over the key index j)
        ys.push_back((rt.unsqueeze(-1) * (uf * a + S)).sum(-2));
        // S_t = a_t + diag(w_t)·S_{t−1}   (the decay multiplies the key index)
        S = a + w.select(1, t).unsqueeze(-1) * S;
    }
    return {at::stack(ys, 1), S};
}

}  // namespace aviary
