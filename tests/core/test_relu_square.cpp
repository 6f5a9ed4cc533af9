// The channel mix's fused ReLU² (core/src/relu_square.cpp) against a float64 reference: every product in it is
// exact in fp32 for bf16 inputs, so in bf16 the output and ∂x must be the float64 values rounded once, bit for bit;
// in fp32 they are the one-rounding values too. NaN, ±inf, 0, lengths that do not fill a vector or a thread's share;
// the same bits on one thread and two; other dtypes through the LibTorch ops.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

#include "aviary/core/relu_square.h"
#include "aviary/core/threads.h"
#include "common/compare.h"
#include "common/thread_counts.h"

using aviary::test::rel_close;

namespace {

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed, double scale = 3) {
    auto gen = at::detail::createCPUGenerator(seed);
    return at::randn(shape, gen) * scale;
}

// x as a leaf of dtype t; its gradient comes back in t.
at::Tensor leaf(const at::Tensor& x, at::ScalarType t) {
    return x.detach().to(t).requires_grad_();
}

}  // namespace

TEST(ReluSquare, OneRoundingOfTheFloat64ValuesBitForBit) {
    for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
        for (int64_t n : {int64_t(1), int64_t(37), int64_t(16384 * 2 + 5)}) {
            at::Tensor x0 = randn({n}, 3 + n);
            if (n > 3) {
                x0[0] = 0.0;
                x0[1] = -INFINITY;
                x0[2] = INFINITY;
            }
            const at::Tensor g0 = randn({n}, 4 + n).to(t);
            at::Tensor x = leaf(x0, t);
            const at::Tensor y = aviary::relu_square(x);
            y.backward(g0);
            at::Tensor xd = leaf(x.detach(), at::kDouble);
            const at::Tensor yd = at::relu(xd).square();
            yd.backward(g0.to(at::kDouble));
            const std::string where = std::string(c10::toString(t)) + " n=" + std::to_string(n);
            ASSERT_EQ(y.scalar_type(), t) << where;
            EXPECT_TRUE(at::equal(y, yd.to(t))) << where;
            EXPECT_TRUE(at::equal(x.grad(), xd.grad().to(t))) << where;
        }
    }
    const at::Tensor nan = aviary::relu_square(at::full({3}, NAN));  // NaN stays NaN, as LibTorch's relu keeps it
    EXPECT_TRUE(nan.isnan().all().item<bool>());
}

TEST(ReluSquare, SameBitsOnOneThreadAndTwoAndOtherDtypes) {
    const int64_t n = 16384 * 5 + 3;  // five shares and a partial one
    const at::Tensor x0 = randn({n}, 11), g0 = randn({n}, 13);
    auto run = [&] {
        at::Tensor x = leaf(x0, at::kFloat);
        const at::Tensor y = aviary::relu_square(x);
        y.backward(g0);
        return at::cat({y.detach(), x.grad()});
    };
    const auto [one, two] = aviary::test::on_one_thread_and_all(run);
    EXPECT_TRUE(at::equal(one, two));

    const at::Tensor xd = x0.to(at::kDouble);
    EXPECT_EQ(aviary::relu_square(xd).scalar_type(), at::kDouble);
    EXPECT_TRUE(at::equal(aviary::relu_square(xd), at::relu(xd).square()));
}
