// Tests vision/src/image_io.cpp and clip_preprocess.cpp against Hugging Face CLIPImageProcessor outputs
// (tests/fixtures/vision, made by tools/make_vision_fixtures.py with transformers 4.40.2 + Pillow), and bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aviary/vision/image.h"
#include "common/compare.h"
#include "common/error_of.h"

using aviary::test::error_of;
using aviary::test::fixture;
namespace av = aviary::vision;

namespace {

// The HF pixel_values of a case: codes c stored as PNG, pixel = (c/255 − mean)/std (the script checked this < 1e-5).
at::Tensor expected_pixels(const std::string& png, at::Tensor* codes_out) {
    at::Tensor codes = av::load_image(fixture("vision/" + png));  // RGB uint8, lossless
    if (codes_out) *codes_out = codes;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    at::Tensor x = (codes.to(torch::kFloat) * (1.0f / 255.0f)).permute({2, 0, 1}).contiguous();
    for (int c = 0; c < 3; ++c) x[c] = (x[c] - mean[c]) / sd[c];
    return x;
}

}  // namespace

TEST(VisionImage, ClipPreprocessMatchesHuggingFace) {
    std::ifstream f(fixture("vision/preprocess_cases.json"));
    auto cases = nlohmann::json::parse(f);
    ASSERT_GE(cases.size(), 6u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c["image"].get<std::string>() + " @" + std::to_string(c["size"].get<int>()));
        av::ClipPreprocess opt;
        opt.size = c["size"].get<int64_t>();
        at::Tensor codes;
        at::Tensor want = expected_pixels(c["expected_codes"], &codes);
        at::Tensor got = av::load_clip_image(fixture("vision/" + c["image"].get<std::string>()), opt);
        ASSERT_EQ(got.sizes(), (at::IntArrayRef{3, opt.size, opt.size}));
        // Pillow's fixed-point bicubic is reproduced exactly: every pixel equal (one code = 0.015 after std).
        EXPECT_TRUE(aviary::test::rel_close(got, want, 1e-6));
        EXPECT_NEAR(got.to(torch::kDouble).sum().item<double>(), c["pixel_values_sum"].get<double>(), 1e-2);
        EXPECT_NEAR(got[0][0][0].item<double>(), c["pixel_values_0_0_0"].get<double>(), 1e-6);
    }
}

TEST(VisionImage, ExifOrientationGreyAnd16Bit) {
    // scene_exif6.jpg stores 64x40 pixels with orientation 6: displayed 40 wide, 64 high
    at::Tensor exif = av::load_image(fixture("vision/scene_exif6.jpg"));
    EXPECT_EQ(exif.sizes(), (at::IntArrayRef{64, 40, 3}));
    at::Tensor grey = av::load_image(fixture("vision/scene_grey.png"));
    EXPECT_EQ(grey.sizes(), (at::IntArrayRef{50, 30, 3}));
    EXPECT_TRUE(grey.select(2, 0).equal(grey.select(2, 1)) && grey.select(2, 1).equal(grey.select(2, 2)));
    at::Tensor deep = av::load_image(fixture("vision/scene_rgb16.png"));
    EXPECT_EQ(deep.scalar_type(), at::kByte);
    EXPECT_EQ(deep.sizes(), (at::IntArrayRef{33, 52, 3}));
}

TEST(VisionImage, PilBicubicUpAndDownMatchesKnownValues) {
    // A 1-D ramp 0, 64, 128, 192, 255 upsampled 5 -> 10 with Pillow's bicubic (a = −0.5), values computed with
    // Pillow 9.4 Image.resize((10, 1), Image.BICUBIC) on mode "RGB"; and 5 -> 3 (support widened by the scale).
    at::Tensor in = torch::tensor({0, 64, 128, 192, 255}, torch::kUInt8).view({1, 5, 1}).expand({1, 5, 3}).contiguous();
    at::Tensor out = av::resize_bicubic_pil(in, 1, 10).select(2, 0).flatten();
    const std::vector<int> want = {0, 11, 45, 80, 112, 144, 176, 210, 244, 255};
    for (int i = 0; i < 10; ++i) EXPECT_EQ(out[i].item<int>(), want[i]) << "index " << i;
    at::Tensor down = av::resize_bicubic_pil(in, 1, 3).select(2, 0).flatten();
    const std::vector<int> want_down = {23, 128, 233};
    for (int i = 0; i < 3; ++i) EXPECT_EQ(down[i].item<int>(), want_down[i]) << "index " << i;
}

TEST(VisionImage, BadInputIsAClearError) {
    EXPECT_NE(error_of([] { av::load_image("/nonexistent/cat.png"); }).find("does not exist"), std::string::npos);
    EXPECT_NE(error_of([] { av::load_image(fixture("vision/corrupt.png")); }).find("cannot decode image"),
              std::string::npos);
    EXPECT_NE(error_of([] { av::load_image(fixture("vision")); }).find("is a directory"), std::string::npos);
    EXPECT_NE(
        error_of([] { av::decode_image("not an image at all", "text.jpg"); }).find("cannot decode image 'text.jpg'"),
        std::string::npos);
    // A PNG header claiming 100000 x 100000 pixels is refused before decoding.
    std::string png = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (uint32_t v : {100000u, 100000u})
        for (int s = 24; s >= 0; s -= 8) png.push_back(char((v >> s) & 0xff));
    png += std::string("\x08\x02\x00\x00\x00", 5) + std::string(100, '\0');
    const std::string e = error_of([&] { av::decode_image(png, "huge.png"); });
    EXPECT_NE(e.find("huge.png' is 100000x100000 pixels"), std::string::npos) << e;
    // the pixel limit also holds for real images
    EXPECT_NE(error_of([] { av::load_image(fixture("vision/scene_rgb.png"), 1000); }).find("more than the 1000"),
              std::string::npos);
}

// clip_pixels_to_rgb undoes the normalisation: on an image already at the crop size (no resize, no crop) it gives
// back every code exactly; a 2:1 image gives the centre crop of its PIL-bicubic resize; other tensors are refused.
TEST(VisionImage, ClipPixelsBackToRgbCodes) {
    torch::manual_seed(7);
    const at::Tensor rgb = torch::randint(0, 256, {24, 24, 3}, torch::kLong).to(torch::kByte);
    av::ClipPreprocess o;
    o.size = 24;
    const at::Tensor back = av::clip_pixels_to_rgb(av::clip_preprocess(rgb, o), o);
    ASSERT_EQ(back.sizes(), rgb.sizes());
    ASSERT_EQ(back.scalar_type(), torch::kByte);
    EXPECT_EQ((back.to(torch::kInt) - rgb.to(torch::kInt)).abs().max().item<int>(), 0);
    const at::Tensor wide = torch::randint(0, 256, {20, 40, 3}, torch::kLong).to(torch::kByte);
    o.size = 10;
    const at::Tensor crop = av::resize_bicubic_pil(wide, 10, 20).slice(1, 5, 15);
    const at::Tensor got = av::clip_pixels_to_rgb(av::clip_preprocess(wide, o), o);
    EXPECT_EQ((got.to(torch::kInt) - crop.to(torch::kInt)).abs().max().item<int>(), 0);
    const std::string e = error_of([] { av::clip_pixels_to_rgb(torch::zeros({24, 24, 3})); });
    EXPECT_NE(e.find("CLIP pixels must be a float tensor (3, H, W)"), std::string::npos) << e;
}
