// The fused AdamW step (core/src/adamw_fused.cpp) against torch::optim::AdamW's own step, the reference it replaces:
// two groups (one with weight decay, one without, different learning rates), a parameter without a gradient, one
// longer than a thread's share, six steps from a fresh state and then from a loaded one; parameters and the
// optimizer's state (exp_avg, exp_avg_sq, step) must agree. AMSGrad, a double parameter or a non-contiguous gradient
// leave it to LibTorch's step, changing nothing.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "../../core/src/adamw_fused.h"
#include "common/compare.h"

using aviary::test::rel_close;

namespace {

std::vector<at::Tensor> make_params(uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    std::vector<at::Tensor> ps;
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{7, 5}, {16384 * 2 + 3}, {4}, {3, 3}})
        ps.push_back(at::randn(shape, gen).requires_grad_());
    return ps;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const std::vector<at::Tensor>& ps, bool amsgrad = false) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto decayed = std::make_unique<torch::optim::AdamWOptions>(3e-3);
    decayed->betas({0.9, 0.99}).eps(1e-8).weight_decay(0.1).amsgrad(amsgrad);
    auto plain = std::make_unique<torch::optim::AdamWOptions>(1e-2);
    plain->betas({0.9, 0.99}).eps(1e-8).weight_decay(0.0).amsgrad(amsgrad);
    groups.emplace_back(std::vector<at::Tensor>{ps[0], ps[1]}, std::move(decayed));
    groups.emplace_back(std::vector<at::Tensor>{ps[2], ps[3]}, std::move(plain));
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(1e-3));
}

// The same gradients on both sets; ps[3] gets none at step 2 (LibTorch skips it then).
void set_grads(std::vector<at::Tensor>& a, std::vector<at::Tensor>& b, int step) {
    auto gen = at::detail::createCPUGenerator(100 + step);
    for (size_t i = 0; i < a.size(); ++i) {
        if (i == 3 && step == 2) {
            a[i].mutable_grad() = at::Tensor();
            b[i].mutable_grad() = at::Tensor();
            continue;
        }
        const at::Tensor g = at::randn(a[i].sizes(), gen) * double(i + 1);
        a[i].mutable_grad() = g.clone();
        b[i].mutable_grad() = g.clone();
    }
}

void expect_same(const std::vector<at::Tensor>& fused, const std::vector<at::Tensor>& ref, torch::optim::AdamW& fo,
                 torch::optim::AdamW& ro, const std::string& where) {
    for (size_t i = 0; i < fused.size(); ++i) {
        EXPECT_TRUE(rel_close(fused[i], ref[i], 1e-6)) << where << " parameter " << i;
        const auto& fs =
            static_cast<torch::optim::AdamWParamState&>(*fo.state().at(aviary::optimizer_state_key(fused[i])));
        const auto& rs =
            static_cast<torch::optim::AdamWParamState&>(*ro.state().at(aviary::optimizer_state_key(ref[i])));
        EXPECT_EQ(fs.step(), rs.step()) << where << " parameter " << i;
        EXPECT_TRUE(rel_close(fs.exp_avg(), rs.exp_avg(), 1e-6)) << where << " parameter " << i;
        EXPECT_TRUE(rel_close(fs.exp_avg_sq(), rs.exp_avg_sq(), 1e-6)) << where << " parameter " << i;
    }
}

}  // namespace

TEST(AdamWFused, MatchesLibTorchsAdamW) {
    auto fused = make_params(1), ref = make_params(1);
    auto fo = make_optimizer(fused), ro = make_optimizer(ref);
    for (int step = 1; step <= 6; ++step) {
        set_grads(fused, ref, step);
        ASSERT_TRUE(aviary::adamw_step_fused(*fo));
        {
            torch::NoGradGuard no_grad;
            ro->step();
        }
        expect_same(fused, ref, *fo, *ro, "step " + std::to_string(step));
    }
    // From a state LibTorch's step made (as after loading a checkpoint): the fused step goes on from it.
    auto fused2 = make_params(1);
    auto fo2 = make_optimizer(fused2);
    {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < fused2.size(); ++i) fused2[i].copy_(ref[i]);
    }
    for (size_t i = 0; i < ref.size(); ++i) {
        const auto& rs =
            static_cast<torch::optim::AdamWParamState&>(*ro->state().at(aviary::optimizer_state_key(ref[i])));
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(rs.step());
        st->exp_avg(rs.exp_avg().clone());
        st->exp_avg_sq(rs.exp_avg_sq().clone());
        fo2->state()[aviary::optimizer_state_key(fused2[i])] = std::move(st);
    }
    set_grads(fused2, ref, 7);
    ASSERT_TRUE(aviary::adamw_step_fused(*fo2));
    {
        torch::NoGradGuard no_grad;
        ro->step();
    }
    expect_same(fused2, ref, *fo2, *ro, "step 7, from a loaded state");
}

TEST(AdamWFused, LeavesWhatItCannotFuseToLibTorch) {
    auto check_untouched = [](std::vector<at::Tensor>& ps, torch::optim::AdamW& o, const char* what) {
        std::vector<at::Tensor> before;
        for (auto& p : ps) before.push_back(p.detach().clone());
        EXPECT_FALSE(aviary::adamw_step_fused(o)) << what;
        for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(at::equal(ps[i], before[i])) << what;
        EXPECT_TRUE(o.state().empty()) << what;
    };
    {
        auto ps = make_params(2), other = make_params(2);
        auto o = make_optimizer(ps, /*amsgrad=*/true);
        set_grads(ps, other, 1);
        check_untouched(ps, *o, "amsgrad");
    }
    {
        auto ps = make_params(3), other = make_params(3);
        for (auto& p : ps) p = p.detach().to(at::kDouble).requires_grad_();
        auto o = make_optimizer(ps);
        for (auto& p : ps) p.mutable_grad() = at::ones_like(p);
        check_untouched(ps, *o, "double");
    }
    {
        auto ps = make_params(4), other = make_params(4);
        auto o = make_optimizer(ps);
        set_grads(ps, other, 1);
        ps[0].mutable_grad() = at::randn({5, 7}).t();  // a transposed view
        check_untouched(ps, *o, "non-contiguous gradient");
    }
}
