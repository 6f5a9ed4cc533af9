// WKV in chunked matrix form (spec §2.5.3): inside a chunk of C tokens, with G the inclusive and E the
// exclusive cumulative log decay, y_t = Σ_{a<t} (r_t·k_a·exp(E_t − G_a)) v_a + (r_t·u·k_t) v_t
// + (r_t ⊙ exp(E_t))·S_in, and S_out = exp(G_last) ⊙ S_in + Σ_a (k_a ⊙ exp(G_last − G_a))ᵀ v_a.
// Pairwise exponents are formed directly (all ≤ 0), so no overflow for fast decays. Autograd via ops.
#include <ATen/ATen.h>

#include <limits>

#include "aviary/core/wkv.h"
#include "wkv_common.h"

namespace aviary {

std::pair<at::Tensor, at::Tensor> wkv_chunked(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                              const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state,
                                              int64_t chunk) {
    const auto s = detail::check_wkv_inputs(r, k, v, log_w, u, state);
    AVIARY_CHECK(chunk >= 1 && chunk <= 1024, "wkv: chunk size must be in [1, 1024], got ", chunk);
    const int64_t B = s.B, T = s.T, H = s.H, N = s.N, C = chunk;
    const int64_t nc = (T + C - 1) / C, Tp = nc * C;
    const auto f32 = r.options().dtype(at::kFloat);

    // (B, T, H, N) -> padded (B, H, nc, C, N); padding has k = v = r = 0 and log_w = 0 (no effect).
    auto to_chunks = [&](const at::Tensor& x) {
        at::Tensor xf = x.to(at::kFloat).expand({B, T, H, N});
        if (Tp != T) xf = at::constant_pad_nd(xf, {0, 0, 0, 0, 0, Tp - T});
        return xf.reshape({B, nc, C, H, N}).permute({0, 3, 1, 2, 4});
    };
    at::Tensor rc = to_chunks(r), kc = to_chunks(k), vc = to_chunks(v), lw = to_chunks(log_w);
    at::Tensor G = lw.cumsum(3);  // inclusive cumulative log decay  (B, H, nc, C, N)
    at::Tensor E = G - lw;        // exclusive

    // Intra-chunk scores A[t][a] = Σ_j r_t[j] k_a[j] exp(E_t[j] − G_a[j]) for a < t; diagonal r_t·u·k_t.
    at::Tensor diff = E.unsqueeze(4) - G.unsqueeze(3);  // (B, H, nc, C_t, C_a, N)
    at::Tensor lower = at::ones({C, C}, f32.dtype(at::kBool)).tril(-1).view({1, 1, 1, C, C, 1});
    at::Tensor pair_decay = diff.masked_fill(lower.logical_not(), -std::numeric_limits<float>::infinity()).exp();
    at::Tensor A = (rc.unsqueeze(4) * kc.unsqueeze(3) * pair_decay).sum(-1);  // (B, H, nc, C, C)
    at::Tensor uf = u.to(at::kFloat).view({1, H, 1, 1, N});
    A = A + at::diag_embed((rc * uf * kc).sum(-1));
    at::Tensor y = at::matmul(A, vc);  // intra-chunk part  (B, H, nc, C, N)

    // Inter-chunk: carry the state chunk by chunk.
    at::Tensor G_last = G.select(3, C - 1);                      // (B, H, nc, N)
    at::Tensor k_to_end = kc * (G_last.unsqueeze(3) - G).exp();  // k_a ⊙ exp(G_last − G_a)
    at::Tensor r_from_start = rc * E.exp();                      // r_t ⊙ exp(E_t)
    at::Tensor S = state.defined() ? state.to(at::kFloat) : at::zeros({B, H, N, N}, f32);
    std::vector<at::Tensor> y_inter;
    y_inter.reserve(nc);
    for (int64_t c = 0; c < nc; ++c) {
        y_inter.push_back(at::matmul(r_from_start.select(2, c), S));  // (B, H, C, N)
        S = G_last.select(2, c).exp().unsqueeze(-1) * S +
            at::matmul(k_to_end.select(2, c).transpose(-1, -2), vc.select(2, c));
    }
    y = y + at::stack(y_inter, 2);
    // (B, H, nc, C, N) -> (B, T, H, N)
    y = y.permute({0, 2, 3, 1, 4}).reshape({B, Tp, H, N});
    if (Tp != T) y = y.narrow(1, 0, T);
    return {y.contiguous(), S};
}

}  // namespace aviary
