// One autograd Function for the fused element-wise unary ops (relu_square.cpp, tanh_fused.cpp): fp32 or bf16 CPU
// tensors, one pass forward and one backward, split over the threads by element ranges (fused_ops_common.h). An op
// is a struct with
//   static constexpr bool kSavesOutput;                 // backward reads the output (true) or the input (false)
//   template <class T> static void forward(const T* x, T* y, int64_t n);
//   template <class T, class G> static void backward(const T* saved, const G* g, T* gx, int64_t n);
// T the tensor's storage (float, or uint16_t for bf16 bits), G the gradient's (read in the input's dtype). Private to
// core/src; include after <torch/torch.h>.
#pragma once
#include <torch/torch.h>

#include <type_traits>

#include "fused_ops_common.h"

namespace aviary::fused {

template <class Op>
at::Tensor run_unary_forward(const at::Tensor& x) {
    at::Tensor y = at::empty_like(x);
    with_storage(x.scalar_type(), [&](auto* t) {
        using T = std::remove_pointer_t<decltype(t)>;
        const T* xp = data_as<const T>(x);
        T* yp = data_as<T>(y);
        for_element_ranges(x.numel(), [&](int64_t i0, int64_t i1) { Op::forward(xp + i0, yp + i0, i1 - i0); });
    });
    return y;
}

template <class Op>
class UnaryFunction : public torch::autograd::Function<UnaryFunction<Op>> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
        at::Tensor y = run_unary_forward<Op>(x);
        ctx->save_for_backward({Op::kSavesOutput ? y : x});
        return y;
    }
    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::tensor_list grads) {
        const at::Tensor s = ctx->get_saved_variables()[0];
        const at::Tensor g = grads[0].to(s.scalar_type()).contiguous();
        at::Tensor gx = at::empty_like(s);
        with_storage(s.scalar_type(), [&](auto* t) {
            using T = std::remove_pointer_t<decltype(t)>;
            const T *sp = data_as<const T>(s), *gp = data_as<const T>(g);
            T* gxp = data_as<T>(gx);
            for_element_ranges(s.numel(),
                               [&](int64_t i0, int64_t i1) { Op::backward(sp + i0, gp + i0, gxp + i0, i1 - i0); });
        });
        return {gx};
    }
};

// Op on x where it is an fp32 or bf16 CPU tensor (with autograd when x needs a gradient), else fallback(x): the
// LibTorch ops the fused op replaces.
template <class Op, class Fallback>
at::Tensor unary_op(const at::Tensor& x, Fallback&& fallback) {
    if (!(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16)))
        return fallback(x);
    const at::Tensor xc = x.contiguous();
    if (!(at::GradMode::is_enabled() && x.requires_grad())) return run_unary_forward<Op>(xc);
    return UnaryFunction<Op>::apply(xc);
}

}  // namespace aviary::fused
