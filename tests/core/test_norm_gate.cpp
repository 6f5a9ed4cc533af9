// The time mix's fused GroupNorm and SiLU gate (core/src/norm_gate.cpp) against a float64 reference: LibTorch's own
// group_norm and silu on double leaves, values and all four gradients; fp32, and bf16 as under the trainer's
// autocast; head sizes that do not fill its 16 partial sums, rows that do not fill its 64-row blocks, a head whose
// values are all equal (variance 0: eps alone); the same bits on one thread and two; other dtypes and devices through
// the LibTorch ops.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "aviary/core/norm_gate.h"
#include "aviary/core/threads.h"
#include "common/bf16_autocast.h"
#include "common/compare.h"
#include "common/thread_counts.h"

using aviary::test::Bf16Autocast;
using aviary::test::rel_close;

namespace {

constexpr double kEps = 64e-5;  // the time mix's (head_size_divisor² · 1e-5)

struct Case {
    int64_t B, T, H, N;
};

struct Inputs {
    at::Tensor y, z, w, b, g;  // g: the gradient of the output
};

Inputs make_inputs(const Case& c, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t A = c.H * c.N;
    Inputs in;
    in.y = at::randn({c.B, c.T, A}, gen) * 3 + 0.5;
    if (c.T > 1) in.y.select(1, 1).narrow(-1, 0, c.N).fill_(0.25);  // head 0 of token 1: all equal
    in.z = at::randn({c.B, c.T, A}, gen) * 4;
    in.w = at::randn({A}, gen);
    in.b = at::randn({A}, gen);
    in.g = at::randn({c.B, c.T, A}, gen);
    return in;
}

struct Result {
    at::Tensor o, gy, gz, gw, gb;
};

// The float64 reference: group_norm over heads, times silu(z), its autograd with the gradient g.
Result reference(const Inputs& in, int64_t H) {
    auto leaf = [](const at::Tensor& t) { return t.detach().to(at::kDouble).requires_grad_(); };
    at::Tensor y = leaf(in.y), z = leaf(in.z), w = leaf(in.w), b = leaf(in.b);
    const int64_t A = y.size(-1);
    at::Tensor o = at::group_norm(y.reshape({-1, A}), H, w, b, kEps).view(y.sizes()) * at::silu(z);
    o.backward(in.g.to(at::kDouble));
    return {o.detach(), y.grad(), z.grad(), w.grad(), b.grad()};
}

Result fused(const Inputs& in, int64_t H, bool bf16) {
    at::Tensor y = in.y.clone().requires_grad_(), z = in.z.clone().requires_grad_();
    at::Tensor w = in.w.clone().requires_grad_(), b = in.b.clone().requires_grad_();
    at::Tensor o;
    if (bf16) {
        Bf16Autocast autocast;
        o = aviary::norm_gate(y, z.to(at::kBFloat16), w, b, H, kEps);  // z as a bf16 product gives it
    } else {
        o = aviary::norm_gate(y, z, w, b, H, kEps);
    }
    o.backward(in.g.to(o.scalar_type()));
    return {o.detach(), y.grad(), z.grad(), w.grad(), b.grad()};
}

// o and ∂z to out_tol (one rounding of the output's dtype, or exp_approx's σ in fp32), ∂y, ∂γ, ∂β (fp32 sums) to 1e-5.
void expect_matches(const Result& f, const Result& r, double out_tol, const std::string& where) {
    EXPECT_TRUE(rel_close(f.o, r.o, out_tol)) << where;
    EXPECT_TRUE(rel_close(f.gz, r.gz, out_tol)) << where;
    EXPECT_TRUE(rel_close(f.gy, r.gy, 1e-5)) << where;
    EXPECT_TRUE(rel_close(f.gw, r.gw, 1e-5)) << where;
    EXPECT_TRUE(rel_close(f.gb, r.gb, 1e-5)) << where;
}

std::string name(const Case& c) {
    return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
           " N=" + std::to_string(c.N);
}

}  // namespace

TEST(NormGate, Fp32MatchesTheFloat64Reference) {
    for (const Case& c : {Case{2, 37, 4, 64}, Case{1, 70, 3, 24}, Case{3, 5, 2, 9}, Case{1, 1, 1, 16}}) {
        const Inputs in = make_inputs(c, 7 + c.N);
        const Result f = fused(in, c.H, false), r = reference(in, c.H);
        EXPECT_EQ(f.o.scalar_type(), at::kFloat);
        expect_matches(f, r, 2e-6, name(c));
    }
}

// Under bf16 autocast: z comes in bf16, o goes out in bf16 (it feeds the output matrix), and its gradient comes back
// in bf16. The reference takes the same bf16 values of z and of the gradient; o and ∂z carry one bf16 rounding.
TEST(NormGate, UnderBf16AutocastMatchesTheFloat64Reference) {
    for (const Case& c : {Case{2, 37, 4, 64}, Case{1, 70, 3, 24}}) {
        Inputs in = make_inputs(c, 3 + c.N);
        in.z = in.z.to(at::kBFloat16).to(at::kFloat);
        in.g = in.g.to(at::kBFloat16).to(at::kFloat);
        const Result f = fused(in, c.H, true), r = reference(in, c.H);
        EXPECT_EQ(f.o.scalar_type(), at::kBFloat16);
        EXPECT_EQ(f.gz.scalar_type(), at::kFloat);  // z's own leaf: the cast's backward widens ∂z
        expect_matches(f, r, 4e-3, name(c));
    }
}

TEST(NormGate, SameBitsOnOneThreadAndTwoAndWithoutGrad) {
    const Case c{3, 200, 4, 32};  // 600 rows: ten 64-row blocks, the last one partial
    const Inputs in = make_inputs(c, 5);
    const auto [one, two] = aviary::test::on_one_thread_and_all([&] { return fused(in, c.H, false); });
    EXPECT_TRUE(at::equal(one.o, two.o));
    EXPECT_TRUE(at::equal(one.gy, two.gy));
    EXPECT_TRUE(at::equal(one.gz, two.gz));
    EXPECT_TRUE(at::equal(one.gw, two.gw));
    EXPECT_TRUE(at::equal(one.gb, two.gb));
    torch::NoGradGuard no_grad;  // inference: the same values, no graph
    const at::Tensor o = aviary::norm_gate(in.y, in.z, in.w, in.b, c.H, kEps);
    EXPECT_FALSE(o.requires_grad());
    EXPECT_TRUE(at::equal(o, one.o));
}

TEST(NormGate, OtherDtypesUseTheLibTorchOpsAndBadHeadsAreErrors) {
    const Inputs in = make_inputs({2, 3, 2, 8}, 9);
    auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
    const at::Tensor o = aviary::norm_gate(d(in.y), d(in.z), d(in.w), d(in.b), 2, kEps);
    EXPECT_EQ(o.scalar_type(), at::kDouble);
    EXPECT_TRUE(at::equal(o, reference(in, 2).o));
    EXPECT_THROW(aviary::norm_gate(in.y, in.z, in.w, in.b, 3, kEps), std::exception);  // 16 channels, 3 heads
}
