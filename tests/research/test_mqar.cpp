// MQAR generator properties (issue 10): every query is answerable from the pairs, nothing leaks (a queried value
// never appears in the query section before its query), each key is queried exactly once, targets are the next
// token, rows depend only on (seed, row); and the ablation-free training loop runs and reports a valid accuracy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>

#include "aviary/core/error.h"
#include "aviary/core/research_mqar.h"

namespace {

TEST(Mqar, EveryQueryIsAnswerableOnceWithoutLeakage) {
    aviary::MqarOptions o;
    o.vocab = 64;
    o.seq_len = 48;
    o.pairs = 6;
    auto b = aviary::make_mqar_batch(o, 40, 7);
    ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{40, 48}));
    auto in = b.inputs.accessor<int64_t, 2>();
    auto tg = b.targets.accessor<int64_t, 2>();
    auto m = b.mask.accessor<float, 2>();
    for (int r = 0; r < 40; ++r) {
        std::map<int64_t, int64_t> kv;
        for (int i = 0; i < o.pairs; ++i) {
            const int64_t k = in[r][2 * i], v = in[r][2 * i + 1];
            ASSERT_TRUE(k >= 1 && k < 32) << "key range";
            ASSERT_TRUE(v >= 32 && v < 64) << "value range";
            ASSERT_TRUE(kv.emplace(k, v).second) << "keys are distinct";
        }
        for (int t = 0; t + 1 < 48; ++t) ASSERT_EQ(tg[r][t], in[r][t + 1]) << "targets are the next token";
        std::set<int64_t> queried;
        std::multiset<int64_t> seen_in_queries;
        int n_mask = 0;
        for (int t = 2 * int(o.pairs); t < 48; ++t) {
            if (m[r][t] > 0) {
                ++n_mask;
                const int64_t key = in[r][t];
                ASSERT_TRUE(kv.count(key)) << "row " << r << ": query " << key << " is not a key of the pairs";
                ASSERT_EQ(tg[r][t], kv[key]) << "the target is the key's value";
                ASSERT_TRUE(queried.insert(key).second) << "a key is queried once";
                ASSERT_EQ(seen_in_queries.count(kv[key]), 0u) << "value visible in the queries before its query";
            } else if (in[r][t] != 0) {
                seen_in_queries.insert(in[r][t]);
            }
        }
        EXPECT_EQ(n_mask, o.pairs);
        for (int t = 0; t < 2 * int(o.pairs); ++t) EXPECT_EQ(m[r][t], 0.f) << "no loss on the pairs";
    }
    // Rows are a function of (seed, row): a slice regenerates identically; another seed differs.
    auto slice = aviary::make_mqar_batch(o, 5, 7, 10);
    EXPECT_TRUE(at::equal(slice.inputs, b.inputs.narrow(0, 10, 5)));
    EXPECT_FALSE(at::equal(aviary::make_mqar_batch(o, 5, 8, 10).inputs, slice.inputs));
}

TEST(Mqar, RejectsImpossibleSettings) {
    aviary::MqarOptions o;
    o.vocab = 64, o.seq_len = 16, o.pairs = 5;  // needs 20 tokens
    EXPECT_THROW(aviary::make_mqar_batch(o, 1, 1), aviary::Error);
    o.pairs = 40, o.seq_len = 512;  // only 31 distinct keys below V/2
    EXPECT_THROW(aviary::make_mqar_batch(o, 1, 1), aviary::Error);
    o.vocab = 7;
    EXPECT_THROW(aviary::make_mqar_batch(o, 1, 1), aviary::Error);
}

// A few steps of each architecture: the loss is finite and falls from its start, the accuracy is a fraction of
// the held-out queries (multiples of 1/(rows·pairs)).
TEST(Mqar, TrainsEveryArchitecture) {
    for (int version : {4, 5, 6}) {
        aviary::MqarRunOptions o;
        o.task.vocab = 32, o.task.seq_len = 16, o.task.pairs = 2;
        o.version = version, o.n_layer = 2, o.n_embd = 64, o.steps = 12, o.batch = 8, o.lr = 3e-3, o.eval_rows = 8;
        auto r = aviary::run_mqar(o);
        ASSERT_EQ(r.losses.size(), 12u);
        for (double l : r.losses) ASSERT_TRUE(std::isfinite(l));
        EXPECT_LT(r.losses.back(), r.losses.front()) << "version " << version;
        EXPECT_GE(r.accuracy, 0.0);
        EXPECT_LE(r.accuracy, 1.0);
        const double units = r.accuracy * 16;
        EXPECT_NEAR(units, std::round(units), 1e-9);
    }
}

}  // namespace
