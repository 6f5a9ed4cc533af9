// Bidirectional Finch WKV (Bi-WKV6, ../shared/reference/multimodal_spec.md B.1): forward scan with the bonus plus
// backward scan without it. bi_wkv builds on core's WKV dispatch (chunked CPU / CUDA, with autograd) run on the
// sequence and on its time reversal; bi_wkv_reference is the plain float64 loop used as the oracle.
#include "aviary/audio/bi_wkv.h"

#include <torch/torch.h>

#include "aviary/core/error.h"
#include "aviary/core/wkv.h"

namespace aviary::audio {

namespace {
void check_args(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                const at::Tensor& u) {
    AVIARY_CHECK(r.dim() == 4 && k.sizes() == r.sizes() && v.sizes() == r.sizes() && log_w.sizes() == r.sizes(),
                 "bi_wkv: r, k, v, log_w must all be (B, T, H, N); got ", r.sizes(), " ", k.sizes(), " ", v.sizes(),
                 " ", log_w.sizes());
    AVIARY_CHECK(u.dim() == 2 && u.size(0) == r.size(2) && u.size(1) == r.size(3), "bi_wkv: u must be (H, N) = (",
                 r.size(2), ", ", r.size(3), "), got ", u.sizes());
}
}  // namespace

at::Tensor bi_wkv(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                  const at::Tensor& u) {
    check_args(r, k, v, log_w, u);
    const at::Tensor lw = log_w.to(torch::kFloat);
    // forward scan: y⁺ with the bonus u at t
    at::Tensor y_fwd = aviary::wkv(r, k, v, lw, u, at::Tensor()).first;
    // backward scan = forward scan of the reversed sequence with u = 0 (excludes t), reversed back
    const std::vector<int64_t> time{1};
    at::Tensor y_bwd =
        aviary::wkv(r.flip(time), k.flip(time), v.flip(time), lw.flip(time), torch::zeros_like(u), at::Tensor())
            .first.flip(time);
    return y_fwd + y_bwd;  // (B, T, H, N) fp32
}

at::Tensor bi_wkv_reference(const at::Tensor& r_in, const at::Tensor& k_in, const at::Tensor& v_in,
                            const at::Tensor& lw_in, const at::Tensor& u_in) {
    check_args(r_in, k_in, v_in, lw_in, u_in);
    auto d = [](const at::Tensor& t) { return t.detach().to(torch::kDouble).contiguous(); };
    at::Tensor r = d(r_in), k = d(k_in), v = d(v_in), lw = d(lw_in), u = d(u_in);
    const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
    at::Tensor y = torch::zeros({B, T, H, N}, torch::kDouble);
    auto ra = r.accessor<double, 4>(), ka = k.accessor<double, 4>(), va = v.accessor<double, 4>();
    auto wa = lw.accessor<double, 4>();
    auto ua = u.accessor<double, 2>();
    auto ya = y.accessor<double, 4>();
    std::vector<double> S(static_cast<size_t>(N * N));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            // forward: y_t = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S[j][i]);  S ← diag(w_t)·S + k_tᵀv_t
            std::fill(S.begin(), S.end(), 0.0);
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t i = 0; i < N; ++i) {
                    double acc = 0;
                    for (int64_t j = 0; j < N; ++j)
                        acc += ra[b][t][h][j] * (ua[h][j] * ka[b][t][h][j] * va[b][t][h][i] + S[size_t(j * N + i)]);
                    ya[b][t][h][i] += acc;
                }
                for (int64_t j = 0; j < N; ++j)
                    for (int64_t i = 0; i < N; ++i)
                        S[size_t(j * N + i)] =
                            std::exp(wa[b][t][h][j]) * S[size_t(j * N + i)] + ka[b][t][h][j] * va[b][t][h][i];
            }
            // backward: y_t += Σ_j r_t[j]·S[j][i];  S ← diag(w_t)·S + k_tᵀv_t   (t = T−1 … 0)
            std::fill(S.begin(), S.end(), 0.0);
            for (int64_t t = T - 1; t >= 0; --t) {
                for (int64_t i = 0; i < N; ++i) {
                    double acc = 0;
                    for (int64_t j = 0; j < N; ++j) acc += ra[b][t][h][j] * S[size_t(j * N + i)];
                    ya[b][t][h][i] += acc;
                }
                for (int64_t j = 0; j < N; ++j)
                    for (int64_t i = 0; i < N; ++i)
                        S[size_t(j * N + i)] =
                            std::exp(wa[b][t][h][j]) * S[size_t(j * N + i)] + ka[b][t][h][j] * va[b][t][h][i];
            }
        }
    return y.to(torch::kFloat);
}

}  // namespace aviary::audio
