// Config tests: version and shapes inferred by key presence; missing, unknown and wrongly shaped keys are
// refused with a message naming the key and the expected shape.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"
#include "aviary/core/error.h"
#include "aviary/core/model_shapes.h"
#include "common/compare.h"

using aviary::test::fixture;

namespace {

std::string error_of(const aviary::TensorList& t) {
    try {
        aviary::infer_config(t);
    } catch (const aviary::Error& e) {
        return e.what();
    }
    return "";
}

TEST(Config, V5AndV6AreRecognisedIndependentlyOfKeyOrder) {
    for (const char* name : {"v5_fp32", "v6_fp32"}) {
        auto t = aviary::read_checkpoint(fixture(std::string("golden/") + name + ".pth"));
        auto c1 = aviary::infer_config(t);
        std::reverse(t.begin(), t.end());
        auto c2 = aviary::infer_config(t);
        EXPECT_EQ(c1.to_json(), c2.to_json());
        EXPECT_EQ(c1.version, name[1] == '5' ? 5 : 6);
        EXPECT_GT(c1.n_params, 0);
    }
}

TEST(Config, RejectsUnknownMissingAndMisshapenKeys) {
    auto base = aviary::read_checkpoint(fixture("golden/v6_fp32.pth"));
    auto extra = base;
    extra.push_back({"blocks.0.att.mystery", at::zeros({3})});
    EXPECT_NE(error_of(extra).find("unknown key 'blocks.0.att.mystery'"), std::string::npos) << error_of(extra);

    auto missing = base;
    missing.erase(std::find_if(missing.begin(), missing.end(),
                               [](const auto& nt) { return nt.name == "blocks.1.ffn.value.weight"; }));
    EXPECT_NE(error_of(missing).find("blocks.1.ffn.value.weight"), std::string::npos) << error_of(missing);

    auto wrong = base;
    for (auto& nt : wrong)
        if (nt.name == "blocks.1.att.key.weight") nt.tensor = at::zeros({128, 64});
    EXPECT_NE(error_of(wrong).find("expected (128, 128)"), std::string::npos) << error_of(wrong);

    EXPECT_NE(error_of({}).find("no tensors"), std::string::npos);
}

}  // namespace

// The prefill FLOPs per token of the 0.1B RWKV-6 shape, counted by hand from the official shapes (D 768, A 768,
// F 2688, LoRA ranks 32/64, 12 layers): per layer r, k, v, g, o 5·768² = 2 949 120; ffn key + value 2·2688·768 =
// 4 128 768; ffn receptance 768² = 589 824; time_maa_w1 768·160 = 122 880; time_maa_w2 5·32·768 = 122 880;
// time_decay_w1 768·64 = 49 152; time_decay_w2 64·768 = 49 152; sum 8 011 776 weights, ×2×12 = 192 282 624, plus the
// WKV 4·768·64·12 = 2 359 296.
TEST(ConfigFlops, SequenceFlopsPerTokenOfTheOfficialShape) {
    EXPECT_EQ(aviary::sequence_flops_per_token(aviary::named_shape("0.1b", 6)), 194641920.0);
    // RWKV-5.2 has no LoRAs: (5·768² + 2·2688·768 + 768²)·2·12 + the WKV
    EXPECT_EQ(aviary::sequence_flops_per_token(aviary::named_shape("0.1b", 5)),
              2.0 * 12 * (5.0 * 768 * 768 + 2.0 * 2688 * 768 + 768.0 * 768) + 4.0 * 768 * 64 * 12);
}
