// The token shift's fused static mixes (core/src/mix_lerp.cpp) against the LibTorch expressions they replace: the
// same bits forward, every gradient (a, prev, each μ) against the expressions' autograd, mixes whose output is unused,
// rows that do not fill the last 64-row block, and the same bits on one thread and two.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "aviary/core/error.h"
#include "aviary/core/mix_lerp.h"
#include "aviary/core/threads.h"
#include "common/bf16_autocast.h"
#include "common/compare.h"
#include "common/thread_counts.h"

using aviary::MixForm;
using aviary::test::Bf16Autocast;
using aviary::test::rel_close;

namespace {

struct Case {
    int64_t B, T, D, K;
    MixForm form;
};

at::Tensor expression(const at::Tensor& a, const at::Tensor& prev, const at::Tensor& m, MixForm form) {
    return form == MixForm::CurrentWeighted ? a * m + prev * (1 - m) : a + (prev - a) * m;
}

struct Leaves {
    at::Tensor a, prev;
    std::vector<at::Tensor> mixes;
};

Leaves make_leaves(const Case& c, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    Leaves l;
    l.a = at::randn({c.B, c.T, c.D}, gen).requires_grad_();
    l.prev = at::randn({c.B, c.T, c.D}, gen).requires_grad_();
    for (int64_t i = 0; i < c.K; ++i) l.mixes.push_back(at::rand({1, 1, c.D}, gen).requires_grad_());
    return l;
}

// Σ_c Σ x_c·w_c over the mixes whose output is used (every third one is left out when K > 2).
at::Tensor loss_of(const std::vector<at::Tensor>& x, const std::vector<at::Tensor>& w) {
    at::Tensor loss = at::zeros({});
    for (size_t c = 0; c < x.size(); ++c)
        if (x.size() <= 2 || c % 3 != 2) loss = loss + (x[c] * w[c]).sum();
    return loss;
}

// The fused outputs xf against the expressions' xe: the same bits; after the loss's backward pass ∂a and ∂prev within
// 1e-6 and each μ's gradient within 1e-5 (zero where its output is unused).
void expect_fused_matches(const std::vector<at::Tensor>& xf, const std::vector<at::Tensor>& xe, const Leaves& f,
                          const Leaves& e, const std::vector<at::Tensor>& w, const std::string& where) {
    ASSERT_EQ(xf.size(), xe.size());
    const size_t K = xf.size();
    for (size_t i = 0; i < K; ++i) EXPECT_TRUE(at::equal(xf[i], xe[i])) << where << " mix " << i;
    loss_of(xf, w).backward();
    loss_of(xe, w).backward();
    EXPECT_TRUE(rel_close(f.a.grad(), e.a.grad(), 1e-6)) << where;
    EXPECT_TRUE(rel_close(f.prev.grad(), e.prev.grad(), 1e-6)) << where;
    for (size_t i = 0; i < K; ++i) {
        ASSERT_TRUE(f.mixes[i].grad().defined()) << where << " mix " << i;
        if (K > 2 && i % 3 == 2)  // output unused: its mix gets a zero gradient
            EXPECT_EQ(f.mixes[i].grad().abs().max().item<float>(), 0.0f) << where << " mix " << i;
        else
            EXPECT_TRUE(rel_close(f.mixes[i].grad(), e.mixes[i].grad(), 1e-5)) << where << " mix " << i;
    }
}

}  // namespace

TEST(MixLerp, SameBitsAsTheExpressionsAndTheirGradients) {
    for (const Case& c : {Case{2, 37, 24, 4, MixForm::CurrentWeighted}, Case{2, 37, 24, 2, MixForm::Difference},
                          Case{4, 64, 256, 4, MixForm::CurrentWeighted}, Case{1, 1, 8, 1, MixForm::Difference},
                          Case{3, 50, 40, 5, MixForm::Difference}}) {
        const std::string where = "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) +
                                  " D=" + std::to_string(c.D) + " K=" + std::to_string(c.K) +
                                  (c.form == MixForm::CurrentWeighted ? " current-weighted" : " difference");
        Leaves f = make_leaves(c, 11 + c.T), e = make_leaves(c, 11 + c.T);
        auto gen = at::detail::createCPUGenerator(5);
        std::vector<at::Tensor> w;
        for (int64_t i = 0; i < c.K; ++i) w.push_back(at::randn({c.B, c.T, c.D}, gen));
        const auto xf = aviary::mix_lerp(f.a, f.prev, f.mixes, c.form);
        std::vector<at::Tensor> xe;
        for (const auto& m : e.mixes) xe.push_back(expression(e.a, e.prev, m, c.form));
        expect_fused_matches(xf, xe, f, e, w, where);
    }
}

TEST(MixLerp, SameBitsOnOneThreadAndTwoAndWithoutGrad) {
    const Case c{3, 200, 64, 4, MixForm::CurrentWeighted};  // 600 rows: ten 64-row blocks, the last one partial
    auto run = [&] {                                        // x_1, then every gradient
        Leaves l = make_leaves(c, 3);
        const auto x = aviary::mix_lerp(l.a, l.prev, l.mixes, c.form);
        at::Tensor loss = at::zeros({});
        for (size_t i = 0; i < x.size(); ++i) loss = loss + (x[i] * x[i]).sum() * double(i + 1);
        loss.backward();
        std::vector<at::Tensor> g{l.a.grad().flatten(), l.prev.grad().flatten()};
        for (auto& m : l.mixes) g.push_back(m.grad().flatten());
        return std::make_pair(x[1].detach(), at::cat(g));
    };
    const auto [one, all] = aviary::test::on_one_thread_and_all(run);
    EXPECT_TRUE(at::equal(one.first, all.first));
    EXPECT_TRUE(at::equal(one.second, all.second));
    // Without gradients (inference) the same values, no graph.
    Leaves l = make_leaves(c, 3);
    torch::NoGradGuard no_grad;
    const auto x = aviary::mix_lerp(l.a, l.prev, l.mixes, c.form);
    EXPECT_FALSE(x[1].requires_grad());
    EXPECT_TRUE(at::equal(x[1], one.first));
}

// Under CPU bf16 autocast (as the trainer's bf16 steps run) the fused pass returns bf16: the bits of the fp32
// expression cast to bf16, which is what the matrix product each x_c feeds would take; ±inf and rounding ties
// included, NaN as NaN (LibTorch's own casts do not agree on a NaN's bits: its vector loop gives 0xffff, c10's scalar
// conversion 0x7fc0). The gradients come back in bf16 and are read exactly: each as the cast expressions' autograd
// gives it.
namespace {

// The bf16 outputs widened to fp32 (the loss is taken in fp32; their gradients come back through the casts).
std::vector<at::Tensor> widened(const std::vector<at::Tensor>& x) {
    std::vector<at::Tensor> out;
    for (const auto& t : x) out.push_back(t.to(at::kFloat));
    return out;
}

void expect_cast_bits(const std::vector<at::Tensor>& fused, const std::vector<at::Tensor>& cast,
                      const std::string& where) {
    ASSERT_EQ(fused.size(), cast.size());
    for (size_t i = 0; i < fused.size(); ++i) {
        ASSERT_EQ(fused[i].scalar_type(), at::kBFloat16) << where;
        const at::Tensor nan = cast[i].isnan();
        EXPECT_TRUE(at::equal(fused[i].isnan(), nan)) << where << " mix " << i;
        const at::Tensor bf = fused[i].view(at::kShort).masked_select(~nan),
                         be = cast[i].view(at::kShort).masked_select(~nan);
        EXPECT_TRUE(at::equal(bf, be)) << where << " mix " << i << ": " << (bf != be).sum().item<int64_t>()
                                       << " values differ";
    }
}
}  // namespace

TEST(MixLerp, UnderBf16AutocastTheCastsBitsAndGradients) {
    for (const Case& c : {Case{2, 37, 24, 4, MixForm::CurrentWeighted}, Case{3, 50, 40, 5, MixForm::Difference}}) {
        const std::string where = c.form == MixForm::CurrentWeighted ? "current-weighted" : "difference";
        {
            // Special values: NaN, ±inf; in row 3, a = prev halfway between two bf16 values (the difference form
            // gives x = a exactly there: ties to even, one down and one up in magnitude).
            torch::NoGradGuard no_grad;
            Leaves l = make_leaves(c, 31);
            l.a.index_put_({0, 0, 0}, std::nanf(""));
            l.a.index_put_({0, 0, 1}, -std::nanf(""));
            l.a.index_put_({0, 1, 2}, INFINITY);
            l.a.index_put_({0, 2, 3}, -INFINITY);
            for (at::Tensor* t : {&l.a, &l.prev}) {
                t->index_put_({0, 3, 0}, 1.0f + 1.0f / 256);     // to 1
                t->index_put_({0, 3, 1}, -(1.0f + 3.0f / 256));  // to -(1 + 1/64)
            }
            Bf16Autocast autocast;
            std::vector<at::Tensor> cast;
            for (const auto& m : l.mixes) cast.push_back(expression(l.a, l.prev, m, c.form).to(at::kBFloat16));
            expect_cast_bits(aviary::mix_lerp(l.a, l.prev, l.mixes, c.form), cast, where + ", special values");
        }
        Leaves f = make_leaves(c, 21), e = make_leaves(c, 21);
        auto gen = at::detail::createCPUGenerator(6);
        std::vector<at::Tensor> w;
        for (int64_t i = 0; i < c.K; ++i) w.push_back(at::randn({c.B, c.T, c.D}, gen));
        std::vector<at::Tensor> xf, xe;
        {
            Bf16Autocast autocast;
            xf = aviary::mix_lerp(f.a, f.prev, f.mixes, c.form);
            for (const auto& m : e.mixes) xe.push_back(expression(e.a, e.prev, m, c.form).to(at::kBFloat16));
        }
        expect_cast_bits(xf, xe, where);
        loss_of(widened(xf), w).backward();
        loss_of(widened(xe), w).backward();
        EXPECT_TRUE(rel_close(f.a.grad(), e.a.grad(), 1e-6)) << where;
        EXPECT_TRUE(rel_close(f.prev.grad(), e.prev.grad(), 1e-6)) << where;
        for (int64_t i = 0; i < c.K; ++i) {
            if (c.K > 2 && i % 3 == 2) continue;  // output unused
            EXPECT_TRUE(rel_close(f.mixes[i].grad(), e.mixes[i].grad(), 1e-5)) << where << " mix " << i;
        }
    }
}

TEST(MixLerp, OtherDtypesUseTheExpressions) {
    auto gen = at::detail::createCPUGenerator(9);
    const at::Tensor a = at::randn({2, 5, 6}, gen, at::kDouble), prev = at::randn({2, 5, 6}, gen, at::kDouble);
    const at::Tensor m = at::rand({1, 1, 6}, gen, at::kDouble);
    for (MixForm form : {MixForm::CurrentWeighted, MixForm::Difference}) {
        const auto x = aviary::mix_lerp(a, prev, {m}, form);
        EXPECT_EQ(x[0].scalar_type(), at::kDouble);
        EXPECT_TRUE(at::equal(x[0], expression(a, prev, m, form)));
    }
}

// RWKV-6's data-dependent token shift: per-row deltas, x_c = a + (prev − a)·(μ_c + δ_c), against that expression
// (δ_c = delta[c]) and its autograd: the same bits forward; ∂a, ∂prev, ∂μ_c and ∂δ_c; an unused output's δ gets a zero
// gradient; fp32 deltas in fp32, bf16 deltas under bf16 autocast (the trainer's bf16 steps, where the mix LoRA's
// product returns them in bf16); the same bits on one thread and two; the shape and form checked.
namespace {

at::Tensor delta_expression(const at::Tensor& a, const at::Tensor& prev, const at::Tensor& m, const at::Tensor& d) {
    return a + (prev - a) * (m + d);
}

// δ scaled like the mix LoRA's output (small against μ in [0, 1)).
at::Tensor make_delta(const Case& c, uint64_t seed, at::ScalarType dtype) {
    auto gen = at::detail::createCPUGenerator(seed);
    return (at::randn({c.K, c.B, c.T, c.D}, gen) * 0.3).to(dtype).requires_grad_();
}

}  // namespace

TEST(MixLerp, DeltasSameBitsAsTheExpressionAndItsGradients) {
    for (const Case& c : {Case{2, 37, 24, 5, MixForm::Difference}, Case{1, 1, 8, 1, MixForm::Difference},
                          Case{3, 50, 40, 5, MixForm::Difference}}) {
        const std::string where = "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) +
                                  " D=" + std::to_string(c.D) + " K=" + std::to_string(c.K);
        Leaves f = make_leaves(c, 41 + c.T), e = make_leaves(c, 41 + c.T);
        const at::Tensor df = make_delta(c, 7, at::kFloat), de = make_delta(c, 7, at::kFloat);
        auto gen = at::detail::createCPUGenerator(8);
        std::vector<at::Tensor> w;
        for (int64_t i = 0; i < c.K; ++i) w.push_back(at::randn({c.B, c.T, c.D}, gen));
        const auto xf = aviary::mix_lerp(f.a, f.prev, f.mixes, c.form, df);
        std::vector<at::Tensor> xe;
        const auto dl = de.unbind(0);
        for (int64_t i = 0; i < c.K; ++i) xe.push_back(delta_expression(e.a, e.prev, e.mixes[i], dl[i]));
        expect_fused_matches(xf, xe, f, e, w, where);
        ASSERT_TRUE(df.grad().defined()) << where;
        for (int64_t i = 0; i < c.K; ++i) {
            if (c.K > 2 && i % 3 == 2)  // output unused: a zero gradient for its δ
                EXPECT_EQ(df.grad()[i].abs().max().item<float>(), 0.0f) << where << " mix " << i;
            else
                EXPECT_TRUE(rel_close(df.grad()[i], de.grad()[i], 1e-6)) << where << " mix " << i;
        }
    }
}

TEST(MixLerp, Bf16DeltasUnderAutocastTheCastsBitsAndGradients) {
    const Case c{3, 50, 40, 5, MixForm::Difference};
    Leaves f = make_leaves(c, 51), e = make_leaves(c, 51);
    const at::Tensor df = make_delta(c, 9, at::kBFloat16), de = make_delta(c, 9, at::kBFloat16);
    auto gen = at::detail::createCPUGenerator(10);
    std::vector<at::Tensor> w;
    for (int64_t i = 0; i < c.K; ++i) w.push_back(at::randn({c.B, c.T, c.D}, gen));
    std::vector<at::Tensor> xf, xe;
    {
        Bf16Autocast autocast;
        xf = aviary::mix_lerp(f.a, f.prev, f.mixes, c.form, df);
        const auto dl = de.unbind(0);
        for (int64_t i = 0; i < c.K; ++i)
            xe.push_back(delta_expression(e.a, e.prev, e.mixes[i], dl[i]).to(at::kBFloat16));
    }
    expect_cast_bits(xf, xe, "bf16 deltas");
    loss_of(widened(xf), w).backward();
    loss_of(widened(xe), w).backward();
    EXPECT_TRUE(rel_close(f.a.grad(), e.a.grad(), 1e-6));
    EXPECT_TRUE(rel_close(f.prev.grad(), e.prev.grad(), 1e-6));
    ASSERT_EQ(df.grad().scalar_type(), at::kBFloat16);
    for (int64_t i = 0; i < c.K; ++i) {
        if (i % 3 == 2) continue;  // output unused
        EXPECT_TRUE(rel_close(f.mixes[i].grad(), e.mixes[i].grad(), 1e-5)) << "mix " << i;
        // g·(prev − a) rounded once to bf16 either way: within one bf16 rounding of the largest value
        EXPECT_TRUE(rel_close(df.grad()[i], de.grad()[i], 4e-3)) << "mix " << i;
    }
}

TEST(MixLerp, DeltasSameBitsOnOneThreadAndTwo) {
    const Case c{3, 200, 64, 5, MixForm::Difference};  // 600 rows: ten 64-row blocks, the last one partial
    auto run = [&] {
        Leaves l = make_leaves(c, 4);
        const at::Tensor d = make_delta(c, 5, at::kFloat);
        const auto x = aviary::mix_lerp(l.a, l.prev, l.mixes, c.form, d);
        at::Tensor loss = at::zeros({});
        for (size_t i = 0; i < x.size(); ++i) loss = loss + (x[i] * x[i]).sum() * double(i + 1);
        loss.backward();
        std::vector<at::Tensor> r{x[2].detach().flatten(), l.a.grad().flatten(), l.prev.grad().flatten(),
                                  d.grad().flatten()};
        for (auto& m : l.mixes) r.push_back(m.grad().flatten());
        return at::cat(r);
    };
    const auto [one, all] = aviary::test::on_one_thread_and_all(run);
    EXPECT_TRUE(at::equal(one, all));
}

TEST(MixLerp, DeltasAreCheckedAndOtherDtypesUseTheExpression) {
    auto gen = at::detail::createCPUGenerator(12);
    const at::Tensor a = at::randn({2, 5, 6}, gen), prev = at::randn({2, 5, 6}, gen);
    const at::Tensor m = at::rand({1, 1, 6}, gen);
    EXPECT_THROW(aviary::mix_lerp(a, prev, {m}, MixForm::CurrentWeighted, at::zeros({1, 2, 5, 6})), aviary::Error);
    EXPECT_THROW(aviary::mix_lerp(a, prev, {m}, MixForm::Difference, at::zeros({2, 2, 5, 6})), aviary::Error);
    EXPECT_THROW(aviary::mix_lerp(a, prev, {m}, MixForm::Difference, at::zeros({1, 2, 5})), aviary::Error);
    const at::Tensor ad = a.to(at::kDouble), pd = prev.to(at::kDouble), md = m.to(at::kDouble);
    const at::Tensor d = at::randn({2, 2, 5, 6}, gen, at::kDouble);
    const auto x = aviary::mix_lerp(ad, pd, {md, md}, MixForm::Difference, d);
    ASSERT_EQ(x.size(), 2u);
    EXPECT_EQ(x[1].scalar_type(), at::kDouble);
    EXPECT_TRUE(at::equal(x[1], delta_expression(ad, pd, md, d[1])));
}
