// Tests vision/src/clip_vit.cpp: parity with Hugging Face CLIPVisionModel (transformers 4.40.2) on a random small
// config (tests/fixtures/vision/clip_tiny, tools/make_vision_fixtures.py), HF and OpenAI key names, feature order,
// and a bf16 file kept and run in bf16.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aviary/core/checkpoint.h"
#include "aviary/vision/clip_vit.h"
#include "common/compare.h"
#include "common/error_of.h"

using aviary::test::fixture;
namespace av = aviary::vision;

namespace {
aviary::TensorList expected() {
    return aviary::read_safetensors(fixture("vision/clip_tiny/expected.safetensors"));
}
at::Tensor get(const aviary::TensorList& t, const std::string& n) {
    return *aviary::find_tensor(t, n);
}
}  // namespace

TEST(VisionClip, HiddenStatesMatchHuggingFace) {
    // heads come from config.json beside the weights (2 heads of 16; the default would be hidden / 64)
    av::ClipVision vit = av::ClipVision::load(fixture("vision/clip_tiny/model.safetensors"));
    EXPECT_EQ(vit.config().heads, 2);
    EXPECT_EQ(vit.config().layers, 2);
    EXPECT_EQ(vit.config().image_size, 32);
    EXPECT_EQ(vit.config().tokens(), 17);
    auto e = expected();
    at::Tensor got = vit.forward(get(e, "pixel_values"));
    EXPECT_TRUE(aviary::test::rel_close(got, get(e, "last_hidden_state"), 1e-4));
}

TEST(VisionClip, OpenAiKeysGiveTheSameModel) {
    av::ClipVision vit = av::ClipVision::from_tensors(
        aviary::read_safetensors(fixture("vision/clip_tiny_openai.safetensors")), /*heads=*/2);
    auto e = expected();
    EXPECT_TRUE(aviary::test::rel_close(vit.forward(get(e, "pixel_values")), get(e, "last_hidden_state"), 1e-4));
}

TEST(VisionClip, PrefixedKeysAndFeatureOrder) {
    // VisualRWKV files hold the tower under "vit.vision_model."; extra keys (rwkv., proj., position_ids) are ignored.
    auto base = aviary::read_safetensors(fixture("vision/clip_tiny/model.safetensors"));
    aviary::TensorList prefixed;
    for (auto& t : base) prefixed.push_back({"vit." + t.name, t.tensor});
    prefixed.push_back({"proj.weight", torch::randn({8, 32})});
    prefixed.push_back({"vit.vision_model.embeddings.position_ids", torch::arange(17).view({1, 17})});
    av::ClipVision vit = av::ClipVision::from_tensors(prefixed, 2);
    auto e = expected();
    at::Tensor want = get(e, "last_hidden_state");
    at::Tensor f = vit.features(get(e, "pixel_values"));  // patches 0..15 then CLS
    EXPECT_TRUE(aviary::test::rel_close(f.slice(1, 0, 16), want.slice(1, 1, 17), 1e-4));
    EXPECT_TRUE(aviary::test::rel_close(f.slice(1, 16, 17), want.slice(1, 0, 1), 1e-4));
}

// A bf16 file (the fixture's weights rounded to bf16) loaded as "auto" keeps its matrices as read and runs them in
// bf16 (oneDNN; activations rounded to bf16 before each product, fp32 accumulation, residual stream, norms and
// softmax in fp32). Reference: the fp32 forward of the same rounded weights. Tolerance 2e-2 of max|ref|: two
// layers of bf16-rounded activations (relative step 2^-8 = 3.9e-3 each, about ten roundings on the path; measured
// 3.2e-3 to 3.9e-3 over five seeds on an AMX Xeon); an fp32 file under "auto" stays fp32 and gives exactly the fp32
// result.
TEST(VisionClip, Bf16FileRunsInBf16NearTheFp32ForwardOfItsWeights) {
    auto base = aviary::read_safetensors(fixture("vision/clip_tiny/model.safetensors"));
    aviary::TensorList bf16;
    for (auto& t : base) bf16.push_back({t.name, t.tensor.to(at::kBFloat16)});
    av::ClipVision kept = av::ClipVision::from_tensors(bf16, 2, "auto");
    av::ClipVision wide = av::ClipVision::from_tensors(bf16, 2, "fp32");
    EXPECT_TRUE(kept.is_bf16());
    EXPECT_FALSE(wide.is_bf16());
    const at::Tensor* fc1 = aviary::find_tensor(bf16, "vision_model.encoder.layers.0.mlp.fc1.weight");
    for (const auto& t : kept.state_dict()) {
        const bool matrix = t.name.find("_proj.") != std::string::npos || t.name.find(".mlp.fc") != std::string::npos ||
                            t.name.find("patch_embedding") != std::string::npos;
        EXPECT_EQ(t.tensor.scalar_type(), matrix ? at::kBFloat16 : at::kFloat) << t.name;
        if (t.name == "vision_model.encoder.layers.0.mlp.fc1.weight") {  // as read: not copied
            EXPECT_EQ(t.tensor.data_ptr(), fc1->data_ptr());
        }
    }
    torch::manual_seed(5);
    const at::Tensor px = torch::cat({get(expected(), "pixel_values"), torch::randn({2, 3, 32, 32})}, 0);
    at::Tensor got = kept.forward(px), want = wide.forward(px);
    EXPECT_EQ(got.scalar_type(), at::kFloat);
    EXPECT_TRUE(aviary::test::rel_close(got, want, 2e-2));
    EXPECT_GT((got - want).abs().max().item<double>(), 0.0);  // it did run in bf16
    // an fp32 file: "auto" is the fp32 tower, bit for bit
    av::ClipVision fp32_auto = av::ClipVision::from_tensors(base, 2, "auto");
    EXPECT_FALSE(fp32_auto.is_bf16());
    EXPECT_TRUE(fp32_auto.forward(px).equal(av::ClipVision::from_tensors(base, 2).forward(px)));
}

TEST(VisionClip, BadWeightsAndInputs) {
    using aviary::test::error_of;
    EXPECT_NE(error_of([] {
                  av::ClipVision::from_tensors({{"emb.weight", torch::zeros({4, 4})}});
              }).find("no CLIP vision tower"),
              std::string::npos);
    auto base = aviary::read_safetensors(fixture("vision/clip_tiny/model.safetensors"));
    aviary::TensorList missing;
    for (auto& t : base)
        if (t.name != "vision_model.pre_layrnorm.weight") missing.push_back(t);
    EXPECT_NE(error_of([&] { av::ClipVision::from_tensors(missing, 2); }).find("pre_layrnorm.weight"),
              std::string::npos);
    av::ClipVision vit = av::ClipVision::from_tensors(base, 2);
    EXPECT_NE(error_of([&] {
                  vit.forward(torch::zeros({1, 3, 64, 64}));
              }).find("expects pixels (B, 3, 32, 32)"),
              std::string::npos);
}
