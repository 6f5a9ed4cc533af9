// Loss by position (issue 10, core/loss_by_position.cpp) against a direct reference: the same model stepped token
// by token in RNN mode with a hand-written log-softmax, per position averaged over documents of different lengths;
// segments that carry the state must not change the result, also beyond a segment boundary.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "aviary/core/error.h"
#include "aviary/core/loss_by_position.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"

namespace {

TEST(LossByPosition, MatchesRnnStepReferenceAcrossSegments) {
    for (int version : {4, 6}) {
        auto model = aviary::Model::from_tensors(aviary::init_weights(aviary::init_config(2, 64, version, 50), 3));
        // Random weights make the init's zero matrices non-trivial.
        {
            torch::NoGradGuard g;
            torch::manual_seed(5);
            for (auto& nt : model.state_dict())
                if (nt.tensor.dim() == 2) nt.tensor.copy_(torch::randn_like(nt.tensor) * 0.3);
        }
        std::vector<std::vector<int32_t>> docs = {{1, 7, 3, 9, 11, 2, 40, 5}, {4, 4, 8}, {49, 0, 13, 21, 33, 8}};
        auto r = aviary::loss_by_position(model, docs, /*max_len=*/7, {}, /*segment=*/3);
        // reference: RNN steps, −log softmax by hand in double
        std::vector<double> sum(6, 0.0);
        std::vector<int64_t> cnt(6, 0);
        double total = 0;
        int64_t n = 0;
        torch::NoGradGuard g;
        for (const auto& d : docs) {
            const size_t len = std::min<size_t>(d.size(), 7);
            auto state = model.new_state(1);
            for (size_t t = 0; t + 1 < len; ++t) {
                at::Tensor logits = model.step(torch::tensor({int64_t(d[t])}), state).squeeze(0).to(torch::kDouble);
                const double mx = logits.max().item<double>();
                const double lse = mx + std::log((logits - mx).exp().sum().item<double>());
                const double nll = lse - logits[d[t + 1]].item<double>();
                sum[t] += nll, cnt[t] += 1, total += nll, ++n;
            }
        }
        ASSERT_EQ(r.mean.size(), 6u);
        EXPECT_EQ(r.tunes, 3);
        for (size_t t = 0; t < 6; ++t) {
            EXPECT_EQ(r.count[t], cnt[t]) << t;
            EXPECT_NEAR(r.mean[t], sum[t] / double(cnt[t]), 1e-4 * std::abs(sum[t] / double(cnt[t])))
                << "version " << version << " t " << t;
        }
        EXPECT_NEAR(r.mean_loss, total / double(n), 1e-4 * total / double(n));
        EXPECT_THROW(aviary::loss_by_position(model, {{1, 50}}, 8), aviary::Error);  // token outside the vocabulary
    }
}

TEST(LossByPosition, GaussianSmoothingKeepsConstantsAndIsSymmetric) {
    std::vector<double> c(40, 2.5), spike(41, 0.0);
    for (double v : aviary::gaussian_smooth(c, 4)) EXPECT_NEAR(v, 2.5, 1e-12);
    spike[20] = 1.0;
    auto s = aviary::gaussian_smooth(spike, 3);
    for (int k = 1; k <= 10; ++k) EXPECT_NEAR(s[20 - k], s[20 + k], 1e-15);
    EXPECT_NEAR(s[20] / s[23], std::exp(0.5), 1e-9);  // e^{−0²/2σ²} / e^{−3²/2σ²} with σ = 3
}

}  // namespace
