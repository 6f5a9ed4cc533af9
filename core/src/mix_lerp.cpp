// The token shift's static mixes (aviary/core/mix_lerp.h): every x_c for one (a, prev) pair in one pass over the
// rows, and one backward pass for all of them, instead of 4–6 LibTorch element-wise ops per mix and their autograd
// nodes (MulBackward's broadcast reductions were ~14 % of a bf16 training step of the music recipe).
//
// Forward gives the bits of the LibTorch expressions it replaces, operation by operation in fp32 (this file is built
// without contraction into fused multiply-adds): CurrentWeighted a·μ + prev·(1 − μ), Difference a + (prev − a)·μ.
// Under CPU bf16 autocast each x_c is stored rounded to bf16, the bits of the cast the matrix product it feeds would
// make (and its gradient comes back in bf16, read exactly).
// Backward, with g_c = ∂L/∂x_c (an undefined g_c is zero):
//   CurrentWeighted: ∂a = Σ_c g_c·μ_c          ∂prev = Σ_c g_c·(1 − μ_c)     ∂μ_c = Σ_rows g_c·(a − prev)
//   Difference:      ∂a = Σ_c g_c·(1 − μ_c)    ∂prev = Σ_c g_c·μ_c           ∂μ_c = Σ_rows g_c·(prev − a)
// The sums over rows go by fixed blocks of rows, added in block order, so no result depends on the thread count.
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/mix_lerp.h"
#include "aviary/core/threads.h"
#include "aviary/core/vec_math.h"
#include "fused_ops_common.h"

namespace aviary {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int64_t kRowsPerBlock = 64;  // the unit of the row sums (and of the threads' shares)

using cpu::load_value;
using cpu::store_value;

template <class Out>
AVIARY_SIMD_CLONES void forward_row(MixForm form, const float* __restrict a, const float* __restrict prev,
                                    const float* __restrict m, Out* __restrict out, int64_t D) {
    if (form == MixForm::CurrentWeighted) {
        for (int64_t i = 0; i < D; ++i) store_value(out + i, a[i] * m[i] + prev[i] * (1.0f - m[i]));
    } else {
        for (int64_t i = 0; i < D; ++i) store_value(out + i, a[i] + (prev[i] - a[i]) * m[i]);
    }
}

// x_c rows [r0, r1) of every mix: a, prev (R, D); mix (K, D); out[c] (R, D).
template <class Out>
void forward_rows(MixForm form, const float* a, const float* prev, const float* mix, int64_t K, int64_t D,
                  const std::vector<Out*>& out, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < K; ++c) forward_row(form, a + r * D, prev + r * D, mix + c * D, out[c] + r * D, D);
}

// One row of one mix's backward: ∂a += g·wa, ∂prev += g·wp, the row sum += g·(a − prev).
template <class G>
AVIARY_SIMD_CLONES void backward_row(const G* __restrict g, const float* __restrict wa, const float* __restrict wp,
                                     const float* __restrict a, const float* __restrict prev, float* __restrict ga,
                                     float* __restrict gprev, float* __restrict sum, int64_t D) {
    for (int64_t i = 0; i < D; ++i) {
        const float gi = load_value(g + i);
        ga[i] += gi * wa[i];
        gprev[i] += gi * wp[i];
        sum[i] += gi * (a[i] - prev[i]);
    }
}

template <class Out>
std::vector<Out*> pointers(std::vector<at::Tensor>& ts) {
    std::vector<Out*> p;
    for (auto& t : ts) p.push_back(t.defined() ? fused::data_as<Out>(t) : nullptr);
    return p;
}

// out_dtype kFloat or kBFloat16
std::vector<at::Tensor> run_forward(MixForm form, const at::Tensor& a, const at::Tensor& prev, const at::Tensor& mix,
                                    at::ScalarType out_dtype) {
    const int64_t K = mix.size(0), D = mix.size(1), R = a.numel() / D;
    std::vector<at::Tensor> out;
    for (int64_t c = 0; c < K; ++c) out.push_back(at::empty(a.sizes(), a.options().dtype(out_dtype)));
    const float *ap = a.data_ptr<float>(), *pp = prev.data_ptr<float>(), *mp = mix.data_ptr<float>();
    auto run = [&](const auto& ptrs) {
        parallel_for_shares((R + kRowsPerBlock - 1) / kRowsPerBlock, [&](int64_t b0, int64_t b1) {
            forward_rows(form, ap, pp, mp, K, D, ptrs, b0 * kRowsPerBlock, std::min(R, b1 * kRowsPerBlock));
        });
    };
    fused::with_storage(out_dtype, [&](auto* t) { run(pointers<std::remove_pointer_t<decltype(t)>>(out)); });
    return out;
}

class MixLerpFunction : public torch::autograd::Function<MixLerpFunction> {
public:
    static tensor_list forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& prev, const at::Tensor& mix,
                               int64_t form, at::ScalarType out_dtype) {
        ctx->save_for_backward({a, prev, mix});
        ctx->saved_data["form"] = form;
        ctx->set_materialize_grads(false);
        return run_forward(static_cast<MixForm>(form), a, prev, mix, out_dtype);
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &a = saved[0], &prev = saved[1], &mix = saved[2];
        const bool current = static_cast<MixForm>(ctx->saved_data["form"].toInt()) == MixForm::CurrentWeighted;
        const int64_t K = mix.size(0), D = mix.size(1), R = a.numel() / D;
        const int64_t blocks = (R + kRowsPerBlock - 1) / kRowsPerBlock;
        // the gradients in the outputs' dtype (fp32, or bf16 under autocast), read as they are
        const bool bf16 = std::any_of(grads.begin(), grads.end(), [](const at::Tensor& t) {
            return t.defined() && t.scalar_type() == at::kBFloat16;
        });
        std::vector<at::Tensor> g(K);
        for (int64_t c = 0; c < K; ++c)
            if (grads[c].defined()) g[c] = grads[c].to(bf16 ? at::kBFloat16 : at::kFloat).contiguous();
        at::Tensor ga = at::empty_like(a), gprev = at::empty_like(prev);
        at::Tensor partial = at::empty({blocks, K, D}, a.options());  // per block of rows: Σ g_c·(a − prev)
        const float *ap = a.data_ptr<float>(), *pp = prev.data_ptr<float>(), *mp = mix.data_ptr<float>();
        float *gap = ga.data_ptr<float>(), *gpp = gprev.data_ptr<float>(), *part = partial.data_ptr<float>();
        std::vector<float> one_minus(K * D);  // 1 − μ_c, as the forward rounds it
        for (int64_t i = 0; i < K * D; ++i) one_minus[i] = 1.0f - mp[i];
        auto run = [&](const auto& gp) {
            parallel_for_shares(blocks, [&](int64_t b0, int64_t b1) {
                for (int64_t blk = b0; blk < b1; ++blk) {
                    const int64_t r0 = blk * kRowsPerBlock, r1 = std::min(R, r0 + kRowsPerBlock);
                    std::fill(part + blk * K * D, part + (blk + 1) * K * D, 0.0f);
                    for (int64_t r = r0; r < r1; ++r) {
                        const float *ar = ap + r * D, *pr = pp + r * D;
                        float *gar = gap + r * D, *gprr = gpp + r * D;
                        std::fill(gar, gar + D, 0.0f);
                        std::fill(gprr, gprr + D, 0.0f);
                        for (int64_t c = 0; c < K; ++c) {
                            if (!gp[c]) continue;
                            const float* wa = current ? mp + c * D : one_minus.data() + c * D;  // ∂x_c/∂a
                            const float* wp = current ? one_minus.data() + c * D : mp + c * D;  // ∂x_c/∂prev
                            backward_row(gp[c] + r * D, wa, wp, ar, pr, gar, gprr, part + (blk * K + c) * D, D);
                        }
                    }
                }
            });
        };
        fused::with_storage(bf16 ? at::kBFloat16 : at::kFloat,
                            [&](auto* t) { run(pointers<const std::remove_pointer_t<decltype(t)>>(g)); });
        // ∂μ_c: the blocks' sums added in block order; (a − prev) for CurrentWeighted, (prev − a) for Difference
        at::Tensor gmix = at::zeros({K, D}, a.options());
        float* gm = gmix.data_ptr<float>();
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t i = 0; i < K * D; ++i) gm[i] += part[blk * K * D + i];
        if (!current) gmix.neg_();
        return {ga, gprev, gmix, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

std::vector<at::Tensor> mix_lerp(const at::Tensor& a, const at::Tensor& prev, const std::vector<at::Tensor>& mixes,
                                 MixForm form) {
    AVIARY_CHECK(!mixes.empty(), "mix_lerp: no mixes");
    const int64_t D = a.size(-1);
    const bool fused = a.device().is_cpu() && a.scalar_type() == at::kFloat && prev.sizes() == a.sizes() &&
                       prev.device().is_cpu() && prev.scalar_type() == at::kFloat &&
                       std::all_of(mixes.begin(), mixes.end(), [&](const at::Tensor& m) {
                           return m.device().is_cpu() && m.scalar_type() == at::kFloat && m.numel() == D;
                       });
    if (!fused) {  // the same expressions in LibTorch ops (CUDA, other dtypes)
        std::vector<at::Tensor> out;
        for (const auto& m : mixes)
            out.push_back(form == MixForm::CurrentWeighted ? a * m + prev * (1 - m) : a + (prev - a) * m);
        return out;
    }
    std::vector<at::Tensor> flat;
    for (const auto& m : mixes) flat.push_back(m.reshape({1, D}));
    const at::Tensor mix = at::cat(flat, 0);  // (K, D); its backward hands each mix its row
    const at::Tensor ac = a.contiguous(), pc = prev.contiguous();
    const at::ScalarType out_dtype = fused::matmul_input_dtype();  // every x_c feeds a matrix product
    const bool grad = at::GradMode::is_enabled() && (a.requires_grad() || prev.requires_grad() || mix.requires_grad());
    if (!grad) return run_forward(form, ac, pc, mix.contiguous(), out_dtype);
    return MixLerpFunction::apply(ac, pc, mix, static_cast<int64_t>(form), out_dtype);
}

}  // namespace aviary
