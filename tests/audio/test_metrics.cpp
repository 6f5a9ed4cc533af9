// mAP / AUC / d′ (audio/src/metrics.cpp) against scikit-learn 1.2 average_precision_score / roc_auc_score on a
// fixture with many tied scores and a class without positives (tools/make_audio_fixtures.py); tolerance 1e-12.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "aviary/audio/metrics.h"
#include "aviary/core/checkpoint.h"
#include "common/compare.h"

namespace aviary::audio {
namespace {

TEST(Metrics, MatchSklearnWithTies) {
    TensorList fx = read_safetensors(test::fixture("audio/map.safetensors"));
    at::Tensor target = find_tensor(fx, "target")->contiguous(), score = find_tensor(fx, "score")->contiguous();
    at::Tensor ap = *find_tensor(fx, "ap"), auc = *find_tensor(fx, "auc"), summary = *find_tensor(fx, "summary");
    const int64_t n = target.size(0), c = target.size(1);
    std::vector<int> t(static_cast<size_t>(n * c));
    std::vector<double> s(static_cast<size_t>(n * c));
    for (int64_t i = 0; i < n * c; ++i) {
        t[size_t(i)] = int(target.view(-1)[i].item<int64_t>());
        s[size_t(i)] = score.view(-1)[i].item<double>();
    }
    TaggingMetrics m = tagging_metrics(t, s, c);
    EXPECT_EQ(m.classes_skipped, 1);
    EXPECT_EQ(m.classes_scored, c - 1);
    for (int64_t j = 0; j < c; ++j) {
        const double want = ap[j].item<double>();
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(m.ap[size_t(j)])) << "class " << j;
            continue;
        }
        EXPECT_NEAR(m.ap[size_t(j)], want, 1e-12) << "AP of class " << j;
        std::vector<int> tc(static_cast<size_t>(n));
        std::vector<double> sc(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            tc[size_t(i)] = t[size_t(i * c + j)];
            sc[size_t(i)] = s[size_t(i * c + j)];
        }
        EXPECT_NEAR(roc_auc(tc, sc), auc[j].item<double>(), 1e-12) << "AUC of class " << j;
    }
    EXPECT_NEAR(m.map, summary[0].item<double>(), 1e-12);
    EXPECT_NEAR(m.mauc, summary[1].item<double>(), 1e-12);
    EXPECT_NEAR(m.dprime, summary[2].item<double>(), 1e-9);
}

TEST(Metrics, AllTiedScoresGivePrevalence) {
    // one threshold: precision = 2/5 at recall 1
    EXPECT_DOUBLE_EQ(average_precision({1, 0, 1, 0, 0}, {0.5, 0.5, 0.5, 0.5, 0.5}), 0.4);
    EXPECT_DOUBLE_EQ(roc_auc({1, 0, 1, 0, 0}, {0.5, 0.5, 0.5, 0.5, 0.5}), 0.5);
    EXPECT_NEAR(d_prime(0.5), 0.0, 1e-12);
}

}  // namespace
}  // namespace aviary::audio
