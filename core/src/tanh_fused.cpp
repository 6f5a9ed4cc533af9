// tanh for the LoRA hidden layers (aviary/core/tanh_fused.h), one pass each way:
//   y = tanh(x)      ∂x = g·(1 − y²)   (from the output, as LibTorch's tanh_backward)
// Every value is computed in fp32 and rounded once to x's dtype. Built without contraction into fused multiply-adds
// and with -fno-trapping-math (tanh_approx's select and exp_approx's clamps vectorise): the same bits in every SIMD
// version and on any thread count.
#include <torch/torch.h>

#include "aviary/core/tanh_fused.h"
#include "aviary/core/vec_math.h"
#include "fused_ops_common.h"

namespace aviary {
namespace {

using cpu::load_value;
using cpu::store_value;
using fused::data_as;
using fused::for_element_ranges;
using fused::with_storage;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

template <class T>
AVIARY_SIMD_CLONES void tanh_fwd(const T* __restrict x, T* __restrict y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) store_value(y + i, cpu::tanh_approx(load_value(x + i)));
}

template <class T, class G>
AVIARY_SIMD_CLONES void tanh_bwd(const T* __restrict y, const G* __restrict g, T* __restrict gx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float yi = load_value(y + i);
        store_value(gx + i, load_value(g + i) * (1.0f - yi * yi));
    }
}

at::Tensor run_tanh(const at::Tensor& x) {
    at::Tensor y = at::empty_like(x);
    with_storage(x.scalar_type(), [&](auto* t) {
        using T = std::remove_pointer_t<decltype(t)>;
        const T* xp = data_as<const T>(x);
        T* yp = data_as<T>(y);
        for_element_ranges(x.numel(), [&](int64_t i0, int64_t i1) { tanh_fwd(xp + i0, yp + i0, i1 - i0); });
    });
    return y;
}

class TanhFunction : public torch::autograd::Function<TanhFunction> {
public:
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
        at::Tensor y = run_tanh(x);
        ctx->save_for_backward({y});
        return y;
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        const at::Tensor y = ctx->get_saved_variables()[0];
        const at::Tensor g = grads[0].to(y.scalar_type()).contiguous();
        at::Tensor gx = at::empty_like(y);
        with_storage(y.scalar_type(), [&](auto* t) {
            using T = std::remove_pointer_t<decltype(t)>;
            const T *yp = data_as<const T>(y), *gp = data_as<const T>(g);
            T* gxp = data_as<T>(gx);
            for_element_ranges(y.numel(),
                               [&](int64_t i0, int64_t i1) { tanh_bwd(yp + i0, gp + i0, gxp + i0, i1 - i0); });
        });
        return {gx};
    }
};

bool fusable(const at::Tensor& t) {
    return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
}

}  // namespace

at::Tensor tanh_fused(const at::Tensor& x) {
    if (!fusable(x)) return at::tanh(x);
    const at::Tensor xc = x.contiguous();
    if (!(at::GradMode::is_enabled() && x.requires_grad())) return run_tanh(xc);
    return TanhFunction::apply(xc);
}

}  // namespace aviary
