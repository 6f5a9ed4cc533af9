// AudioRWKV (audio/src/audio_rwkv.cpp): Tiny/Small configurations, shapes, a save/load round trip giving the same
// logits, metadata errors, gradients reaching every parameter, and the bidirectional mixing (a change at the last
// patch changes the first patch's representation, so information flows backwards in time).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/core/error.h"
#include "common/compare.h"
#include "wav_writer.h"

namespace aviary::audio {
namespace {

std::vector<ClassLabel> labels(int64_t n) {
    std::vector<ClassLabel> l;
    for (int64_t i = 0; i < n; ++i) l.push_back({"/m/" + std::to_string(i), "class " + std::to_string(i)});
    return l;
}
AudioRwkvConfig small_test_config() {
    AudioRwkvConfig c = AudioRwkvConfig::tiny(0.5);  // 51 frames -> 3 × 4 patches of 16
    c.n_embd = 64;
    c.n_head = 1;
    c.n_layer = 2;
    c.n_classes = 5;
    return c;
}

TEST(AudioRwkv, PaperConfigurations) {
    auto t = AudioRwkvConfig::tiny(), s = AudioRwkvConfig::small();
    EXPECT_EQ(t.n_embd, 192);
    EXPECT_EQ(t.n_layer, 12);
    EXPECT_EQ(t.n_head, 3);
    EXPECT_EQ(s.n_embd, 384);
    EXPECT_EQ(s.n_head, 6);
    EXPECT_EQ(t.frames(), 1001);  // 10 s at 32 kHz, hop 320
    EXPECT_EQ(t.grid_t(), 62);    // 1001 // 16 (trailing frames dropped)
    EXPECT_EQ(t.grid_f(), 4);
    AudioRwkv tiny(AudioRwkvConfig::tiny(2.0), labels(527));
    EXPECT_GT(tiny.parameter_count(), 5'000'000);  // ~6-7M: the VRWKV6-T scale
    EXPECT_LT(tiny.parameter_count(), 9'000'000);
}

TEST(AudioRwkv, SaveLoadRoundTrip) {
    auto dir = test::audio_scratch_dir("audio_model");
    AudioRwkv m(small_test_config(), labels(5), 7);
    torch::manual_seed(1);
    at::Tensor x = torch::randn({2, 51, 64}) * 10 - 40;
    at::Tensor y = m.forward(x);
    EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 5}));
    m.save((dir / "m.safetensors").string());
    AudioRwkv back = AudioRwkv::load((dir / "m.safetensors").string());
    EXPECT_EQ(back.labels()[3].name, "class 3");
    EXPECT_TRUE(test::rel_close(back.forward(x), y, 1e-6));
}

TEST(AudioRwkv, LoadRejectsOtherFiles) {
    auto dir = test::audio_scratch_dir("audio_model_bad");
    write_safetensors((dir / "x.safetensors").string(), {{"a", torch::zeros({2})}});
    try {
        AudioRwkv::load((dir / "x.safetensors").string());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not an AudioRWKV model"), std::string::npos) << e.what();
    }
}

TEST(AudioRwkv, GradientsReachEveryParameter) {
    AudioRwkv m(small_test_config(), labels(5), 3);
    // zero-initialised output projections block gradients to earlier weights at step 0; perturb them
    {
        torch::NoGradGuard g;
        for (auto& p : m.named_parameters()) p.tensor.add_(torch::randn_like(p.tensor) * 0.02);
    }
    m.set_training(true);
    at::Tensor x = torch::randn({3, 51, 64});
    m.forward(x).sum().backward();
    for (const auto& p : m.named_parameters()) {
        ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
        EXPECT_GT(p.tensor.grad().abs().sum().item<double>(), 0.0) << p.name;
    }
}

TEST(AudioRwkv, InformationFlowsBothWays) {
    AudioRwkvConfig c = small_test_config();
    c.n_layer = 1;
    AudioRwkv m(c, labels(5), 5);
    {
        torch::NoGradGuard g;
        for (auto& p : m.named_parameters()) p.tensor.add_(torch::randn_like(p.tensor) * 0.05);
    }
    // compare the pooled output when only the LAST time patch changes vs. when only the FIRST changes: both matter
    at::Tensor x = torch::randn({1, 51, 64});
    at::Tensor x_last = x.clone(), x_first = x.clone();
    x_last.slice(1, 32, 48).add_(3.0);
    x_first.slice(1, 0, 16).add_(3.0);
    const double base = m.forward(x).abs().sum().item<double>();
    EXPECT_GT((m.forward(x_last) - m.forward(x)).abs().max().item<double>(), 1e-4 * base);
    EXPECT_GT((m.forward(x_first) - m.forward(x)).abs().max().item<double>(), 1e-4 * base);
}

}  // namespace
}  // namespace aviary::audio
