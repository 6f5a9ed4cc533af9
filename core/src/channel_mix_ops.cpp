// The channel mix's element-wise ops (aviary/core/channel_mix_ops.h), one pass each way. In a bf16 training step of
// the music recipe, relu, square, sigmoid, the gate's product, their backward nodes (threshold_backward, pow, two
// products) and a copy were ~13 ms of ~250 ms on 2 Zen 4 cores, for ~12 MB of data per layer.
//   relu_square   y = relu(x)²            ∂x = g·2·relu(x)
//   sigmoid_gate  y = σ(r)·v              ∂r = g·v·σ(r)·(1 − σ(r))     ∂v = g·σ(r)
// σ is vec_math.h's (exp_approx, ≤ 1.2 ulp) so the loops vectorise; every value is computed in fp32 and rounded once
// to the output's dtype. The file is built without contraction into fused multiply-adds: the same bits in every SIMD
// version and on any thread count.
#include <torch/torch.h>

#include <algorithm>

#include "aviary/core/channel_mix_ops.h"
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

constexpr int64_t kGrain = 16384;  // elements per share of the threads

template <class T>
AVIARY_SIMD_CLONES void relu_square_fwd(const T* __restrict x, T* __restrict y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float r = std::max(load_value(x + i), 0.0f);
        store_value(y + i, r * r);
    }
}

template <class T, class G>
AVIARY_SIMD_CLONES void relu_square_bwd(const T* __restrict x, const G* __restrict g, T* __restrict gx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) store_value(gx + i, load_value(g + i) * (2.0f * std::max(load_value(x + i), 0.0f)));
}

template <class T>
AVIARY_SIMD_CLONES void sigmoid_gate_fwd(const T* __restrict r, const T* __restrict v, T* __restrict y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) store_value(y + i, cpu::sigmoid_approx(load_value(r + i)) * load_value(v + i));
}

template <class T, class G>
AVIARY_SIMD_CLONES void sigmoid_gate_bwd(const T* __restrict r, const T* __restrict v, const G* __restrict g,
                                         T* __restrict gr, T* __restrict gv, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float s = cpu::sigmoid_approx(load_value(r + i)), gi = load_value(g + i);
        store_value(gr + i, gi * load_value(v + i) * (s * (1.0f - s)));
        store_value(gv + i, gi * s);
    }
}

// fn(i0, i1) over [0, n) in shares of the threads.
template <class Fn>
void over_elements(int64_t n, Fn&& fn) {
    parallel_for_shares((n + kGrain - 1) / kGrain,
                        [&](int64_t b0, int64_t b1) { fn(b0 * kGrain, std::min(n, b1 * kGrain)); });
}

at::Tensor run_relu_square(const at::Tensor& x) {
    at::Tensor y = at::empty_like(x);
    with_storage(x.scalar_type(), [&](auto* t) {
        using T = std::remove_pointer_t<decltype(t)>;
        const T* xp = data_as<const T>(x);
        T* yp = data_as<T>(y);
        over_elements(x.numel(), [&](int64_t i0, int64_t i1) { relu_square_fwd(xp + i0, yp + i0, i1 - i0); });
    });
    return y;
}

at::Tensor run_sigmoid_gate(const at::Tensor& r, const at::Tensor& v) {
    at::Tensor y = at::empty_like(r);
    with_storage(r.scalar_type(), [&](auto* t) {
        using T = std::remove_pointer_t<decltype(t)>;
        const T *rp = data_as<const T>(r), *vp = data_as<const T>(v);
        T* yp = data_as<T>(y);
        over_elements(r.numel(), [&](int64_t i0, int64_t i1) { sigmoid_gate_fwd(rp + i0, vp + i0, yp + i0, i1 - i0); });
    });
    return y;
}

class ReluSquareFunction : public torch::autograd::Function<ReluSquareFunction> {
public:
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
        ctx->save_for_backward({x});
        return run_relu_square(x);
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const at::Tensor x = ctx->get_saved_variables()[0];
        const at::Tensor g = grads[0].to(x.scalar_type()).contiguous();
        at::Tensor gx = at::empty_like(x);
        with_storage(x.scalar_type(), [&](auto* t) {
            using T = std::remove_pointer_t<decltype(t)>;
            const T *xp = data_as<const T>(x), *gp = data_as<const T>(g);
            T* gxp = data_as<T>(gx);
            over_elements(x.numel(),
                          [&](int64_t i0, int64_t i1) { relu_square_bwd(xp + i0, gp + i0, gxp + i0, i1 - i0); });
        });
        return {gx};
    }
};

class SigmoidGateFunction : public torch::autograd::Function<SigmoidGateFunction> {
public:
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& v) {
        ctx->save_for_backward({r, v});
        return run_sigmoid_gate(r, v);
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &r = saved[0], &v = saved[1];
        const at::Tensor g = grads[0].to(r.scalar_type()).contiguous();
        at::Tensor gr = at::empty_like(r), gv = at::empty_like(v);
        with_storage(r.scalar_type(), [&](auto* t) {
            using T = std::remove_pointer_t<decltype(t)>;
            const T *rp = data_as<const T>(r), *vp = data_as<const T>(v), *gp = data_as<const T>(g);
            T *grp = data_as<T>(gr), *gvp = data_as<T>(gv);
            over_elements(r.numel(), [&](int64_t i0, int64_t i1) {
                sigmoid_gate_bwd(rp + i0, vp + i0, gp + i0, grp + i0, gvp + i0, i1 - i0);
            });
        });
        return {gr, gv};
    }
};

bool fusable(const at::Tensor& t) {
    return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
}

bool wants_grad(const at::Tensor& a, const at::Tensor& b) {
    return at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}

}  // namespace

at::Tensor relu_square(const at::Tensor& x) {
    if (!fusable(x)) return at::relu(x).square();
    const at::Tensor xc = x.contiguous();
    if (!wants_grad(x, x)) return run_relu_square(xc);
    return ReluSquareFunction::apply(xc);
}

at::Tensor sigmoid_gate(const at::Tensor& r, const at::Tensor& v) {
    if (!fusable(r) || !fusable(v) || r.sizes() != v.sizes()) return at::sigmoid(r) * v;
    const at::ScalarType t = at::promote_types(r.scalar_type(), v.scalar_type());
    const at::Tensor rc = r.to(t).contiguous(), vc = v.to(t).contiguous();
    if (!wants_grad(r, v)) return run_sigmoid_gate(rc, vc);
    return SigmoidGateFunction::apply(rc, vc);
}

}  // namespace aviary
