// RWKV-6's LoRA tanh (core/src/tanh_fused.cpp) against a float64 reference: in fp32 the output within 5e-7 relative
// of tanh (vec_math.h's bound for tanh_approx) and ∂x = g·(1 − y²) within 1e-6 of the float64 value from the same y;
// in bf16 both within one bf16 rounding of the float64 values (plus that bound). ±inf to ±1, NaN stays NaN, 0 stays
// 0, tiny and large inputs; lengths that do not fill a vector or a thread's share; the same bits on one thread and
// two; other dtypes through at::tanh.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

#include "aviary/core/tanh_fused.h"
#include "aviary/core/threads.h"
#include "common/thread_counts.h"

namespace {

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed, double scale) {
    auto gen = at::detail::createCPUGenerator(seed);
    return at::randn(shape, gen) * scale;
}

// Largest |actual − expected| / (|expected|·rel + abs) over the elements (≤ 1 passes); abs a number or a tensor of
// per-element allowances; an exact match counts 0 (so 0 against 0 passes with no allowance).
double worst(const at::Tensor& actual, const at::Tensor& expected, double rel, const at::Tensor& abs) {
    const at::Tensor a = actual.to(at::kDouble), e = expected.to(at::kDouble);
    const at::Tensor err = (a - e).abs();
    return at::where(err == 0, at::zeros_like(err), err / (e.abs() * rel + abs)).max().item<double>();
}
double worst(const at::Tensor& actual, const at::Tensor& expected, double rel) {
    return worst(actual, expected, rel, at::zeros({}, at::kDouble));
}

}  // namespace

TEST(TanhFused, WithinItsBoundOfFloat64InFp32AndOneRoundingInBf16) {
    for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
        // one bf16 rounding is 2^-8 relative (8 significant bits); fp32 values carry tanh_approx's 2.7e-7 (bound 5e-7)
        const double rel = t == at::kFloat ? 5e-7 : std::ldexp(1.0, -8) + 5e-7;
        for (int64_t n : {int64_t(1), int64_t(37), int64_t(16384 * 2 + 5)}) {
            at::Tensor x0 = randn({n}, 3 + n, 2.0);
            if (n > 6) {
                x0[0] = 0.0;
                x0[1] = -INFINITY;
                x0[2] = INFINITY;
                x0[3] = 1e-30;   // the series' branch: tanh x = x
                x0[4] = 0.2499;  // either side of the branch point
                x0[5] = 0.2501;
                x0[6] = -30.0;  // saturated
            }
            const at::Tensor g0 = randn({n}, 4 + n, 1.0).to(t);
            const at::Tensor x = x0.to(t).requires_grad_();
            const at::Tensor y = aviary::tanh_fused(x);
            y.backward(g0);
            const std::string where = std::string(c10::toString(t)) + " n=" + std::to_string(n);
            ASSERT_EQ(y.scalar_type(), t) << where;
            ASSERT_EQ(x.grad().scalar_type(), t) << where;
            const at::Tensor xd = x.detach().to(at::kDouble), yd = at::tanh(xd);
            EXPECT_LE(worst(y, yd, rel), 1.0) << where;
            // ∂x from the op's own y (as LibTorch's tanh_backward) in float64. fp32 arithmetic rounds y² (2^-24, which
            // 1 − y² near y = ±1 cannot shed: |g|·2^-23 allowed) and the product (2^-24 relative); in bf16, y² and
            // 1 − y² are exact in fp32 and only the final rounding to bf16 (2^-8) is left.
            const at::Tensor y64 = y.detach().to(at::kDouble), g64 = g0.to(at::kDouble);
            const at::Tensor gd = g64 * (1 - y64 * y64);
            const double grel = t == at::kFloat ? std::ldexp(1.0, -23) : std::ldexp(1.0, -8) + std::ldexp(1.0, -23);
            EXPECT_LE(worst(x.grad(), gd, grel, g64.abs() * std::ldexp(1.0, -23)), 1.0) << where;
            if (n > 6) {
                EXPECT_EQ(y[0].item<double>(), 0.0) << where;
                EXPECT_EQ(y[1].item<double>(), -1.0) << where;
                EXPECT_EQ(y[2].item<double>(), 1.0) << where;
                EXPECT_EQ(y[6].item<double>(), -1.0) << where;
            }
        }
    }
    const at::Tensor nan = aviary::tanh_fused(at::full({3}, NAN));
    EXPECT_TRUE(nan.isnan().all().item<bool>());
}

TEST(TanhFused, SameBitsOnOneThreadAndTwoAndOtherDtypes) {
    const int64_t n = 16384 * 5 + 3;  // five shares and a partial one
    const at::Tensor x0 = randn({n}, 11, 2.0), g0 = randn({n}, 13, 1.0);
    const auto [one, two] = aviary::test::on_one_thread_and_all([&] {
        const at::Tensor x = x0.clone().requires_grad_();
        const at::Tensor y = aviary::tanh_fused(x);
        y.backward(g0);
        return at::cat({y.detach(), x.grad()});
    });
    EXPECT_TRUE(at::equal(one, two));
    // without gradients: the same values, no graph
    const at::Tensor y = aviary::tanh_fused(x0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(at::equal(y, one.narrow(0, 0, n)));
    // a non-contiguous input
    const at::Tensor m = randn({6, 10}, 17, 2.0);
    EXPECT_LE(worst(aviary::tanh_fused(m.t()), at::tanh(m.t().to(at::kDouble)), 5e-7), 1.0);
    // float64 goes to at::tanh
    const at::Tensor d = randn({5}, 19, 2.0).to(at::kDouble);
    EXPECT_TRUE(at::equal(aviary::tanh_fused(d), at::tanh(d)));
}
