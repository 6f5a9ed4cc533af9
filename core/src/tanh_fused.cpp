// tanh for the LoRA hidden layers (aviary/core/tanh_fused.h), one pass each way:
//   y = tanh(x)      ∂x = g·(1 − y²)   (from the output, as LibTorch's tanh_backward)
// Every value is computed in fp32 and rounded once to x's dtype. Built without contraction into fused multiply-adds
// and with -fno-trapping-math (tanh_approx's select and exp_approx's clamps vectorise): the same bits in every SIMD
// version and on any thread count.
#include <torch/torch.h>

#include "aviary/core/tanh_fused.h"
#include "aviary/core/vec_math.h"
#include "fused_unary_op.h"

namespace aviary {
namespace {

using cpu::load_value;
using cpu::store_value;

// The loops, each built per ISA (AVIARY_SIMD_CLONES); ∂x from y.
struct TanhOp {
    static constexpr bool kSavesOutput = true;
    template <class T>
    AVIARY_SIMD_CLONES static void forward(const T* __restrict x, T* __restrict y, int64_t n) {
        for (int64_t i = 0; i < n; ++i) store_value(y + i, cpu::tanh_approx(load_value(x + i)));
    }
    template <class T, class G>
    AVIARY_SIMD_CLONES static void backward(const T* __restrict y, const G* __restrict g, T* __restrict gx, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
            const float yi = load_value(y + i);
            store_value(gx + i, load_value(g + i) * (1.0f - yi * yi));
        }
    }
};

}  // namespace

at::Tensor tanh_fused(const at::Tensor& x) {
    return fused::unary_op<TanhOp>(x, [](const at::Tensor& t) { return at::tanh(t); });
}

}  // namespace aviary
