// Golden tests: Aviary's Eagle/Finch logits and states against the official `rwkv` package 0.8.32
// (fixtures from tools/make_golden.py, "cpu fp32" strategy; bf16 files compared against the fp32 upcast
// of the same values with ln0 folded in fp32). Sequence mode, RNN mode and a split prefill must all agree.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "common/compare.h"

using aviary::test::fixture;
using aviary::test::rel_close;

namespace {

constexpr double kTol = 1e-4;  // issue 2: within 1e-4 relative (max |Δ| / max |ref|)

struct Golden {
    aviary::TensorList expected;
    at::Tensor get(const std::string& name) const {
        const at::Tensor* t = aviary::find_tensor(expected, name);
        EXPECT_NE(t, nullptr) << "fixture lacks " << name;
        return t ? *t : at::Tensor();
    }
};

Golden load_golden(const std::string& name) {
    return Golden{aviary::read_safetensors(fixture("golden/" + name + ".expected.safetensors"))};
}

class ModelGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGolden, SequenceModeMatchesOfficial) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"));
    at::Tensor tokens = g.get("tokens").to(at::kLong).unsqueeze(0);
    auto state = model.new_state(1);
    at::Tensor logits = model.forward(tokens, state, /*all_logits=*/true).squeeze(0);
    EXPECT_TRUE(rel_close(logits, g.get("logits_seq"), kTol));
    // the state after the sequence equals the official RNN-mode state
    for (int l = 0; l < model.config().n_layer; ++l) {
        const std::string p = "state." + std::to_string(l) + ".";
        EXPECT_TRUE(rel_close(state.att_shift[l].squeeze(0), g.get(p + "att_shift"), kTol)) << p;
        EXPECT_TRUE(rel_close(state.wkv[l].squeeze(0), g.get(p + "wkv"), kTol)) << p;
        EXPECT_TRUE(rel_close(state.ffn_shift[l].squeeze(0), g.get(p + "ffn_shift"), kTol)) << p;
    }
}

TEST_P(ModelGolden, ChunkedSequenceModeMatchesOfficial) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    aviary::ModelOptions opt;
    opt.wkv = aviary::WkvImpl::Chunked;
    opt.wkv_chunk = 5;  // T = 12 is not a multiple: exercises the padded last chunk
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"), opt);
    at::Tensor tokens = g.get("tokens").to(at::kLong).unsqueeze(0);
    auto state = model.new_state(1);
    at::Tensor logits = model.forward(tokens, state, true).squeeze(0);
    EXPECT_TRUE(rel_close(logits, g.get("logits_seq"), kTol));
}

TEST_P(ModelGolden, RnnModeMatchesOfficial) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"));
    at::Tensor tokens = g.get("tokens").to(at::kLong);
    at::Tensor expected = g.get("logits_rnn");
    auto state = model.new_state(1);
    for (int64_t t = 0; t < tokens.size(0); ++t) {
        at::Tensor logits = model.step(tokens.narrow(0, t, 1), state).squeeze(0);
        EXPECT_TRUE(rel_close(logits, expected[t], kTol)) << "token " << t;
    }
    for (int l = 0; l < model.config().n_layer; ++l)
        EXPECT_TRUE(rel_close(state.wkv[l].squeeze(0), g.get("state." + std::to_string(l) + ".wkv"), kTol));
}

TEST_P(ModelGolden, SplitPrefillThenRnnMatchesOfficial) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"));
    at::Tensor tokens = g.get("tokens").to(at::kLong);
    auto state = model.new_state(1);
    model.forward(tokens.narrow(0, 0, 5).unsqueeze(0), state, false);
    at::Tensor logits;
    for (int64_t t = 5; t < tokens.size(0); ++t) logits = model.step(tokens.narrow(0, t, 1), state);
    EXPECT_TRUE(rel_close(logits.squeeze(0), g.get("logits_split_last"), kTol));
}

TEST_P(ModelGolden, BatchOfTwoEqualsTwoSingleRuns) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"));
    at::Tensor tokens = g.get("tokens").to(at::kLong);
    at::Tensor batch = at::stack({tokens, tokens.flip(0)});
    auto state = model.new_state(2);
    at::Tensor logits = model.forward(batch, state, true);
    EXPECT_TRUE(rel_close(logits[0], g.get("logits_seq"), kTol));
    auto single = model.new_state(1);
    at::Tensor flipped = model.forward(tokens.flip(0).unsqueeze(0), single, true).squeeze(0);
    EXPECT_TRUE(rel_close(logits[1], flipped, 1e-5));
}

TEST_P(ModelGolden, Bf16WeightsStayWithinBf16Tolerance) {
    const std::string name = GetParam();
    auto g = load_golden(name);
    aviary::ModelOptions opt;
    opt.dtype = "bf16";
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"), opt);
    at::Tensor tokens = g.get("tokens").to(at::kLong).unsqueeze(0);
    auto state = model.new_state(1);
    at::Tensor logits = model.forward(tokens, state, true).squeeze(0);
    EXPECT_TRUE(rel_close(logits, g.get("logits_seq"), 3e-2));
}

// dtype "auto" keeps the file's precision: the official bf16 .pth files load as bf16 (the same logits as asking for
// bf16), the fp32 ones as fp32.
TEST_P(ModelGolden, AutoDtypeIsTheFilesPrecision) {
    const std::string name = GetParam();
    aviary::ModelOptions automatic, bf16;
    automatic.dtype = "auto";
    bf16.dtype = "bf16";
    auto model = aviary::Model::load(fixture("golden/" + name + ".pth"), automatic);
    const bool stored_bf16 = name.find("bf16") != std::string::npos;
    EXPECT_EQ(model.options().dtype, stored_bf16 ? "bf16" : "fp32") << name;
    if (stored_bf16) {
        auto explicit_bf16 = aviary::Model::load(fixture("golden/" + name + ".pth"), bf16);
        auto g = load_golden(name);
        at::Tensor tokens = g.get("tokens").to(at::kLong).unsqueeze(0);
        auto s1 = model.new_state(1), s2 = explicit_bf16.new_state(1);
        EXPECT_TRUE(at::equal(model.forward(tokens, s1, false), explicit_bf16.forward(tokens, s2, false)));
    }
    aviary::ModelOptions bad;
    bad.dtype = "fp8";
    EXPECT_THROW(aviary::Model::load(fixture("golden/" + name + ".pth"), bad), aviary::Error);
}

INSTANTIATE_TEST_SUITE_P(Official, ModelGolden,
                         ::testing::Values("v4_fp32", "v5_fp32", "v5_bf16", "v6_fp32", "v6_bf16", "v6_ranks_bf16",
                                           "v6_state_bf16"));

TEST(ModelConfigGolden, InfersShapesFromTheFile) {
    auto model = aviary::Model::load(fixture("golden/v6_ranks_bf16.pth"));
    const auto& c = model.config();
    EXPECT_EQ(c.version, 6);
    EXPECT_EQ(c.n_layer, 2);
    EXPECT_EQ(c.n_embd, 128);
    EXPECT_EQ(c.n_head, 2);
    EXPECT_EQ(c.head_size, 64);
    EXPECT_EQ(c.ffn_dim, 448);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.mix_lora_rank, 16);
    EXPECT_EQ(c.decay_lora_rank, 32);
    auto v5 = aviary::Model::load(fixture("golden/v5_fp32.pth"));
    EXPECT_EQ(v5.config().version, 5);
    EXPECT_EQ(v5.config().mix_lora_rank, 0);
    auto v4 = aviary::Model::load(fixture("golden/v4_fp32.pth"));  // RWKV-4: time_first, no heads
    EXPECT_EQ(v4.config().version, 4);
    EXPECT_EQ(v4.config().n_head, 1);
    EXPECT_EQ(v4.config().head_size, 128);
    EXPECT_EQ(v4.config().ffn_dim, 448);
}

TEST(ModelGoldenStateDict, RoundTripsThroughSafetensors) {
    auto tensors = aviary::read_checkpoint(fixture("golden/v6_fp32.pth"));
    auto model = aviary::Model::from_tensors(tensors);
    auto sd = model.state_dict();
    ASSERT_EQ(sd.size(), tensors.size());
    for (const auto& nt : tensors) {
        const at::Tensor* t = aviary::find_tensor(sd, nt.name);
        ASSERT_NE(t, nullptr) << nt.name;
        EXPECT_TRUE(at::equal(*t, nt.tensor)) << nt.name;
    }
}

}  // namespace
