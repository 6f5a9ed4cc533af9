// The token shift's mixes (aviary/core/mix_lerp.h): every x_c for one (a, prev) pair in one pass over the
// rows, and one backward pass for all of them, instead of 4–6 LibTorch element-wise ops per mix and their autograd
// nodes (MulBackward's broadcast reductions were ~14 % of a bf16 training step of the music recipe).
//
// Forward gives the bits of the LibTorch expressions it replaces, operation by operation in fp32 (this file is built
// without contraction into fused multiply-adds): CurrentWeighted a·μ + prev·(1 − μ), Difference a + (prev − a)·μ.
// Under CPU bf16 autocast each x_c is stored rounded to bf16, the bits of the cast the matrix product it feeds would
// make (and its gradient comes back in bf16, read exactly).
// With RWKV-6's per-row deltas δ_c (the mix LoRA's output, fp32 or bf16), Difference is a + (prev − a)·(μ_c + δ_c).
// Backward, with g_c = ∂L/∂x_c (an undefined g_c is zero) and m_c = μ_c (+ δ_c):
//   CurrentWeighted: ∂a = Σ_c g_c·μ_c          ∂prev = Σ_c g_c·(1 − μ_c)     ∂μ_c = Σ_rows g_c·(a − prev)
//   Difference:      ∂a = Σ_c g_c·(1 − m_c)    ∂prev = Σ_c g_c·m_c           ∂μ_c = Σ_rows g_c·(prev − a)
//                    ∂δ_c = g_c·(prev − a), row by row, in δ's dtype
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

// Difference with a delta row: a + (prev − a)·(μ + δ), in that order.
template <class Dl, class Out>
AVIARY_SIMD_CLONES void forward_row_delta(const float* __restrict a, const float* __restrict prev,
                                          const float* __restrict m, const Dl* __restrict delta, Out* __restrict out,
                                          int64_t D) {
    for (int64_t i = 0; i < D; ++i) store_value(out + i, a[i] + (prev[i] - a[i]) * (m[i] + load_value(delta + i)));
}

// x_c rows [r0, r1) of every mix: a, prev (R, D); mix (K, D); out[c] (R, D); delta null or (K, R, D).
template <class Dl, class Out>
void forward_rows(MixForm form, const float* a, const float* prev, const float* mix, const Dl* delta, int64_t K,
                  int64_t R, int64_t D, const std::vector<Out*>& out, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < K; ++c) {
            if (delta)
                forward_row_delta(a + r * D, prev + r * D, mix + c * D, delta + (c * R + r) * D, out[c] + r * D, D);
            else
                forward_row(form, a + r * D, prev + r * D, mix + c * D, out[c] + r * D, D);
        }
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

// The Difference backward of one row with a delta row: m = μ + δ; ∂a += g·(1 − m), ∂prev += g·m, ∂δ = g·(prev − a),
// and the row sum += g·(a − prev) like backward_row's (exactly −∂δ).
template <class G, class Dl>
AVIARY_SIMD_CLONES void backward_row_delta(const G* __restrict g, const float* __restrict mu,
                                           const Dl* __restrict delta, const float* __restrict a,
                                           const float* __restrict prev, float* __restrict ga, float* __restrict gprev,
                                           float* __restrict sum, Dl* __restrict gdelta, int64_t D) {
    for (int64_t i = 0; i < D; ++i) {
        const float gi = load_value(g + i), m = mu[i] + load_value(delta + i), gd = gi * (prev[i] - a[i]);
        ga[i] += gi * (1.0f - m);
        gprev[i] += gi * m;
        sum[i] -= gd;
        store_value(gdelta + i, gd);
    }
}

template <class Out>
std::vector<Out*> pointers(std::vector<at::Tensor>& ts) {
    std::vector<Out*> p;
    for (auto& t : ts) p.push_back(t.defined() ? fused::data_as<Out>(t) : nullptr);
    return p;
}

// out_dtype kFloat or kBFloat16; delta empty (numel 0) or (K, R, D) contiguous, fp32 or bf16
std::vector<at::Tensor> run_forward(MixForm form, const at::Tensor& a, const at::Tensor& prev, const at::Tensor& mix,
                                    const at::Tensor& delta, at::ScalarType out_dtype) {
    const int64_t K = mix.size(0), D = mix.size(1), R = a.numel() / D;
    std::vector<at::Tensor> out;
    for (int64_t c = 0; c < K; ++c) out.push_back(at::empty(a.sizes(), a.options().dtype(out_dtype)));
    const float *ap = a.data_ptr<float>(), *pp = prev.data_ptr<float>(), *mp = mix.data_ptr<float>();
    auto run = [&](const auto* dl, const auto& ptrs) {
        parallel_for_shares((R + kRowsPerBlock - 1) / kRowsPerBlock, [&](int64_t b0, int64_t b1) {
            forward_rows(form, ap, pp, mp, dl, K, R, D, ptrs, b0 * kRowsPerBlock, std::min(R, b1 * kRowsPerBlock));
        });
    };
    fused::with_storage(delta.scalar_type(), [&](auto* d) {
        using Dl = std::remove_pointer_t<decltype(d)>;
        const Dl* dl = delta.numel() > 0 ? fused::data_as<const Dl>(delta) : nullptr;
        fused::with_storage(out_dtype, [&](auto* t) { run(dl, pointers<std::remove_pointer_t<decltype(t)>>(out)); });
    });
    return out;
}

class MixLerpFunction : public torch::autograd::Function<MixLerpFunction> {
public:
    // delta: no deltas travel as an empty tensor (autograd Functions take defined tensors)
    static tensor_list forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& prev, const at::Tensor& mix,
                               const at::Tensor& delta, int64_t form, at::ScalarType out_dtype) {
        ctx->save_for_backward({a, prev, mix, delta});
        ctx->saved_data["form"] = form;
        ctx->set_materialize_grads(false);
        return run_forward(static_cast<MixForm>(form), a, prev, mix, delta, out_dtype);
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &a = saved[0], &prev = saved[1], &mix = saved[2], &delta = saved[3];
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
        // ∂δ_c is zero where g_c is undefined: those rows are never written
        at::Tensor gdelta = delta.numel() == 0 ? at::Tensor()
                            : std::all_of(g.begin(), g.end(), [](const at::Tensor& t) { return t.defined(); })
                                ? at::empty_like(delta)
                                : at::zeros_like(delta);
        at::Tensor partial = at::empty({blocks, K, D}, a.options());  // per block of rows: Σ g_c·(a − prev)
        const float *ap = a.data_ptr<float>(), *pp = prev.data_ptr<float>(), *mp = mix.data_ptr<float>();
        float *gap = ga.data_ptr<float>(), *gpp = gprev.data_ptr<float>(), *part = partial.data_ptr<float>();
        std::vector<float> one_minus(K * D);  // 1 − μ_c, as the forward rounds it
        for (int64_t i = 0; i < K * D; ++i) one_minus[i] = 1.0f - mp[i];
        auto run = [&](const auto& gp, const auto* dl, auto* gdl) {
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
                            if (dl) {
                                const int64_t o = (c * R + r) * D;
                                backward_row_delta(gp[c] + r * D, mp + c * D, dl + o, ar, pr, gar, gprr,
                                                   part + (blk * K + c) * D, gdl + o, D);
                                continue;
                            }
                            const float* wa = current ? mp + c * D : one_minus.data() + c * D;  // ∂x_c/∂a
                            const float* wp = current ? one_minus.data() + c * D : mp + c * D;  // ∂x_c/∂prev
                            backward_row(gp[c] + r * D, wa, wp, ar, pr, gar, gprr, part + (blk * K + c) * D, D);
                        }
                    }
                }
            });
        };
        fused::with_storage(bf16 ? at::kBFloat16 : at::kFloat, [&](auto* t) {
            const auto gp = pointers<const std::remove_pointer_t<decltype(t)>>(g);
            fused::with_storage(delta.scalar_type(), [&](auto* d) {
                using Dl = std::remove_pointer_t<decltype(d)>;
                if (gdelta.defined())
                    run(gp, fused::data_as<const Dl>(delta), fused::data_as<Dl>(gdelta));
                else
                    run(gp, static_cast<const Dl*>(nullptr), static_cast<Dl*>(nullptr));
            });
        });
        // ∂μ_c: the blocks' sums added in block order; (a − prev) for CurrentWeighted, (prev − a) for Difference
        at::Tensor gmix = at::zeros({K, D}, a.options());
        float* gm = gmix.data_ptr<float>();
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t i = 0; i < K * D; ++i) gm[i] += part[blk * K * D + i];
        if (!current) gmix.neg_();
        return {ga, gprev, gmix, gdelta, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

std::vector<at::Tensor> mix_lerp(const at::Tensor& a, const at::Tensor& prev, const std::vector<at::Tensor>& mixes,
                                 MixForm form, const at::Tensor& delta) {
    AVIARY_CHECK(!mixes.empty(), "mix_lerp: no mixes");
    const int64_t D = a.size(-1), K = int64_t(mixes.size());
    if (delta.defined()) {
        AVIARY_CHECK(form == MixForm::Difference, "mix_lerp: per-row deltas go with the Difference form only");
        std::vector<int64_t> want{K};
        for (int64_t s : a.sizes()) want.push_back(s);
        AVIARY_CHECK(delta.sizes().vec() == want, "mix_lerp: delta must be (", K, ", ", a.sizes(),
                     ") (one row per mix "
                     "and input row), got ",
                     delta.sizes());
    }
    const bool fused =
        a.device().is_cpu() && a.scalar_type() == at::kFloat && prev.sizes() == a.sizes() && prev.device().is_cpu() &&
        prev.scalar_type() == at::kFloat &&
        std::all_of(mixes.begin(), mixes.end(),
                    [&](const at::Tensor& m) {
                        return m.device().is_cpu() && m.scalar_type() == at::kFloat && m.numel() == D;
                    }) &&
        (!delta.defined() ||
         (delta.device().is_cpu() && (delta.scalar_type() == at::kFloat || delta.scalar_type() == at::kBFloat16)));
    if (!fused) {  // the same expressions in LibTorch ops (CUDA, other dtypes)
        std::vector<at::Tensor> out;
        // unbind, not K selects: the selects' backward passes would each write a zero tensor of delta's whole size
        const std::vector<at::Tensor> dl = delta.defined() ? delta.unbind(0) : std::vector<at::Tensor>();
        for (int64_t c = 0; c < K; ++c) {
            const at::Tensor& m = mixes[c];
            out.push_back(form == MixForm::CurrentWeighted ? a * m + prev * (1 - m)
                          : dl.empty()                     ? a + (prev - a) * m
                                                           : a + (prev - a) * (m + dl[c]));
        }
        return out;
    }
    std::vector<at::Tensor> flat;
    for (const auto& m : mixes) flat.push_back(m.reshape({1, D}));
    const at::Tensor mix = at::cat(flat, 0);  // (K, D); its backward hands each mix its row
    const at::Tensor ac = a.contiguous(), pc = prev.contiguous();
    // no deltas: an empty tensor (autograd Functions take defined tensors)
    const at::Tensor dc = delta.defined() ? delta.contiguous() : at::empty({0}, a.options());
    const at::ScalarType out_dtype = fused::matmul_input_dtype();  // every x_c feeds a matrix product
    const bool grad = at::GradMode::is_enabled() &&
                      (a.requires_grad() || prev.requires_grad() || mix.requires_grad() || dc.requires_grad());
    if (!grad) return run_forward(form, ac, pc, mix.contiguous(), dc, out_dtype);
    return MixLerpFunction::apply(ac, pc, mix, dc, static_cast<int64_t>(form), out_dtype);
}

}  // namespace aviary
