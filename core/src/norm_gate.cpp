// The time mix's GroupNorm and SiLU gate in one pass each way (aviary/core/norm_gate.h). They were, per layer of a
// bf16 training step, group_norm and its backward (fp32), silu and its backward, a product and its backward, and the
// casts between bf16 and fp32: ~20 ms of a 250 ms step of the music recipe on 2 Zen 4 cores, for ~3 MB of data.
//
// Per row (token) and head h, over the head's N channels, with x̂ = (y − mean)·rstd, n = γ·x̂ + β, s = σ(z):
//   forward   o = n·z·s
//   backward  ∂z = g·n·s·(1 + z·(1 − s))      ∂n = g·z·s      ∂β = Σ_rows ∂n      ∂γ = Σ_rows ∂n·x̂
//             ∂y = rstd·(∂x̂ − mean_N(∂x̂) − x̂·mean_N(∂x̂·x̂)),  ∂x̂ = ∂n·γ
// σ is vec_math.h's (exp_approx, ≤ 1.2 ulp), so the loops vectorise. Sums over N go by a fixed order of 16 partial
// sums, the sums over rows by fixed blocks of rows added in block order, and the file is built without contraction
// into fused multiply-adds: the same bits on any thread count and in every SIMD version.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/norm_gate.h"
#include "aviary/core/threads.h"
#include "aviary/core/vec_math.h"
#include "fused_ops_common.h"

namespace aviary {
namespace {

using cpu::load_value;
using cpu::store_value;
using fused::data_as;
using fused::with_storage;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int64_t kRowsPerBlock = 64;  // the unit of the row sums (and of the threads' shares)
constexpr int kPartials = 16;          // partial sums of a sum over a head's channels

// Σ x[0..n) by 16 partial sums (lane j takes every 16th value from j), then the partials in order, then the tail.
inline float sum_of(const float* x, int64_t n) {
    float acc[kPartials] = {};
    int64_t i = 0;
    for (; i + kPartials <= n; i += kPartials)
        for (int j = 0; j < kPartials; ++j) acc[j] += x[i + j];
    float s = 0.0f;
    for (int j = 0; j < kPartials; ++j) s += acc[j];
    for (; i < n; ++i) s += x[i];
    return s;
}

// One row (H heads of N channels): each head's mean and rstd into stats (H, 2), and o.
template <class Z, class O>
AVIARY_SIMD_CLONES void forward_row(const float* __restrict y, const Z* __restrict z, const float* __restrict gamma,
                                    const float* __restrict beta, int64_t H, int64_t N, float eps,
                                    float* __restrict tmp, O* __restrict o, float* __restrict stats) {
    for (int64_t h = 0; h < H; ++h) {
        const float* yh = y + h * N;
        const float mean = sum_of(yh, N) / float(N);
        for (int64_t i = 0; i < N; ++i) tmp[i] = (yh[i] - mean) * (yh[i] - mean);
        const float rstd = 1.0f / std::sqrt(sum_of(tmp, N) / float(N) + eps);
        stats[2 * h] = mean;
        stats[2 * h + 1] = rstd;
        for (int64_t i = 0; i < N; ++i) {
            const int64_t c = h * N + i;
            const float zc = load_value(z + c);
            const float n = (yh[i] - mean) * rstd * gamma[c] + beta[c];
            store_value(o + c, n * (zc * cpu::sigmoid_approx(zc)));
        }
    }
}

// One row's backward: gy, gz; gamma_sum and beta_sum (H·N) accumulate Σ ∂n·x̂ and Σ ∂n. tmp holds 2N floats.
template <class Z, class G>
AVIARY_SIMD_CLONES void backward_row(const float* __restrict y, const Z* __restrict z, const float* __restrict gamma,
                                     const float* __restrict beta, const G* __restrict g, const float* __restrict stats,
                                     int64_t H, int64_t N, float* __restrict tmp, float* __restrict gy,
                                     Z* __restrict gz, float* __restrict gamma_sum, float* __restrict beta_sum) {
    float* dxh = tmp;         // ∂x̂
    float* dxh_xh = tmp + N;  // ∂x̂·x̂
    for (int64_t h = 0; h < H; ++h) {
        const float mean = stats[2 * h], rstd = stats[2 * h + 1];
        for (int64_t i = 0; i < N; ++i) {
            const int64_t c = h * N + i;
            const float xh = (y[c] - mean) * rstd;
            const float zc = load_value(z + c), gc = load_value(g + c);
            const float s = cpu::sigmoid_approx(zc);
            const float n = xh * gamma[c] + beta[c];
            store_value(gz + c, gc * n * (s * (1.0f + zc * (1.0f - s))));
            const float dn = gc * (zc * s);
            beta_sum[c] += dn;
            gamma_sum[c] += dn * xh;
            dxh[i] = dn * gamma[c];
            dxh_xh[i] = dxh[i] * xh;
        }
        const float m1 = sum_of(dxh, N) / float(N), m2 = sum_of(dxh_xh, N) / float(N);
        for (int64_t i = 0; i < N; ++i) {
            const int64_t c = h * N + i;
            const float xh = (y[c] - mean) * rstd;
            gy[c] = rstd * (dxh[i] - m1 - xh * m2);
        }
    }
}

struct Shape {
    int64_t R, H, N;
};

// o and the per-(row, head) stats (R, H, 2); y, z contiguous.
std::pair<at::Tensor, at::Tensor> run_forward(const at::Tensor& y, const at::Tensor& z, const at::Tensor& gamma,
                                              const at::Tensor& beta, Shape s, float eps, at::ScalarType out_dtype) {
    at::Tensor o = at::empty(y.sizes(), y.options().dtype(out_dtype));
    at::Tensor stats = at::empty({s.R, s.H, 2}, y.options());
    const float *yp = y.data_ptr<float>(), *gp = gamma.data_ptr<float>(), *bp = beta.data_ptr<float>();
    float* sp = stats.data_ptr<float>();
    const int64_t A = s.H * s.N;
    with_storage(z.scalar_type(), [&](auto* zt) {
        using Z = std::remove_pointer_t<decltype(zt)>;
        with_storage(out_dtype, [&](auto* ot) {
            using O = std::remove_pointer_t<decltype(ot)>;
            const Z* zp = data_as<const Z>(z);
            O* op = data_as<O>(o);
            parallel_for_shares((s.R + kRowsPerBlock - 1) / kRowsPerBlock, [&](int64_t b0, int64_t b1) {
                std::vector<float> tmp(s.N);
                for (int64_t r = b0 * kRowsPerBlock; r < std::min(s.R, b1 * kRowsPerBlock); ++r)
                    forward_row(yp + r * A, zp + r * A, gp, bp, s.H, s.N, eps, tmp.data(), op + r * A,
                                sp + r * s.H * 2);
            });
        });
    });
    return {o, stats};
}

class NormGateFunction : public torch::autograd::Function<NormGateFunction> {
public:
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& z, const at::Tensor& gamma,
                              const at::Tensor& beta, int64_t heads, double eps, at::ScalarType out_dtype) {
        const int64_t A = y.size(-1);
        auto [o, stats] = run_forward(y, z, gamma, beta, {y.numel() / A, heads, A / heads}, float(eps), out_dtype);
        ctx->save_for_backward({y, z, gamma, beta, stats});
        ctx->saved_data["heads"] = heads;
        return o;
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &y = saved[0], &z = saved[1], &gamma = saved[2], &beta = saved[3], &stats = saved[4];
        const int64_t A = y.size(-1), H = ctx->saved_data["heads"].toInt();
        const Shape s{y.numel() / A, H, A / H};
        const int64_t blocks = (s.R + kRowsPerBlock - 1) / kRowsPerBlock;
        const at::Tensor g = grads[0].contiguous();  // o's dtype: fp32, or bf16 under autocast
        at::Tensor gy = at::empty_like(y), gz = at::empty_like(z);
        at::Tensor partial = at::empty({blocks, 2, A}, y.options());  // per block of rows: Σ ∂n·x̂, Σ ∂n
        const float *yp = y.data_ptr<float>(), *gp = gamma.data_ptr<float>(), *bp = beta.data_ptr<float>();
        const float* sp = stats.data_ptr<float>();
        float *gyp = gy.data_ptr<float>(), *part = partial.data_ptr<float>();
        with_storage(z.scalar_type(), [&](auto* zt) {
            using Z = std::remove_pointer_t<decltype(zt)>;
            with_storage(g.scalar_type(), [&](auto* gt) {
                using G = std::remove_pointer_t<decltype(gt)>;
                const Z* zp = data_as<const Z>(z);
                Z* gzp = data_as<Z>(gz);
                const G* ggp = data_as<const G>(g);
                parallel_for_shares(blocks, [&](int64_t b0, int64_t b1) {
                    std::vector<float> tmp(2 * s.N);
                    for (int64_t blk = b0; blk < b1; ++blk) {
                        float *gamma_sum = part + blk * 2 * A, *beta_sum = gamma_sum + A;
                        std::fill(gamma_sum, gamma_sum + 2 * A, 0.0f);
                        for (int64_t r = blk * kRowsPerBlock; r < std::min(s.R, (blk + 1) * kRowsPerBlock); ++r)
                            backward_row(yp + r * A, zp + r * A, gp, bp, ggp + r * A, sp + r * H * 2, H, s.N,
                                         tmp.data(), gyp + r * A, gzp + r * A, gamma_sum, beta_sum);
                    }
                });
            });
        });
        at::Tensor sums = at::zeros({2, A}, y.options());  // the blocks' sums added in block order
        float* sm = sums.data_ptr<float>();
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t i = 0; i < 2 * A; ++i) sm[i] += part[blk * 2 * A + i];
        return {gy, gz, sums[0], sums[1], at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

bool fusable(const at::Tensor& y, const at::Tensor& z, const at::Tensor& weight, const at::Tensor& bias) {
    auto cpu_f32 = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; };
    const int64_t A = y.size(-1);
    return cpu_f32(y) && z.device().is_cpu() && (z.scalar_type() == at::kFloat || z.scalar_type() == at::kBFloat16) &&
           z.sizes() == y.sizes() && cpu_f32(weight) && cpu_f32(bias) && weight.numel() == A && bias.numel() == A;
}

}  // namespace

at::Tensor norm_gate(const at::Tensor& y, const at::Tensor& z, const at::Tensor& weight, const at::Tensor& bias,
                     int64_t heads, double eps) {
    const int64_t A = y.size(-1);
    AVIARY_CHECK(heads > 0 && A % heads == 0, "norm_gate: ", A, " channels do not split into ", heads, " heads");
    if (!fusable(y, z, weight, bias)) {  // the LibTorch ops (CUDA, other dtypes)
        const at::Tensor n = at::group_norm(y.reshape({-1, A}), heads, weight, bias, eps).view(y.sizes());
        return n * at::silu(z);
    }
    const at::ScalarType out_dtype = fused::matmul_input_dtype();  // o feeds the output matrix
    const at::Tensor yc = y.contiguous(), zc = z.contiguous(), w = weight.contiguous(), b = bias.contiguous();
    const bool grad = at::GradMode::is_enabled() &&
                      (y.requires_grad() || z.requires_grad() || weight.requires_grad() || bias.requires_grad());
    if (!grad) return run_forward(yc, zc, w, b, {yc.numel() / A, heads, A / heads}, float(eps), out_dtype).first;
    return NormGateFunction::apply(yc, zc, w, b, heads, eps, out_dtype);
}

}  // namespace aviary
