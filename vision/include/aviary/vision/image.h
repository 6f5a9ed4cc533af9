// Image input for the vision models: decode any format OpenCV reads (EXIF orientation applied, grey and 16-bit
// converted to 8-bit RGB), and CLIP preprocessing exactly as Hugging Face CLIPImageProcessor / OpenAI `_transform`
// (spec A.12): shortest edge resized with PIL's bicubic filter, centre crop, 1/255, CLIP mean/std.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace aviary::vision {

// The largest image (width × height) load_image accepts; larger ones are an error before decoding.
constexpr int64_t kMaxImagePixels = 64LL * 1024 * 1024;

// Decodes an image file to RGB uint8 (H, W, 3). EXIF orientation is applied; grey and grey+alpha become three equal
// channels, alpha is dropped, 16-bit samples are scaled to 8 bits (round(v / 257)). A missing, unreadable,
// truncated or over-large file is an aviary::Error naming the file.
at::Tensor load_image(const std::string& path, int64_t max_pixels = kMaxImagePixels);
// Same for encoded bytes already in memory (`name` is used in messages).
at::Tensor decode_image(const std::string& bytes, const std::string& name, int64_t max_pixels = kMaxImagePixels);

// PIL's Image.resize with Image.BICUBIC (a = −0.5, support widened by the scale when downsampling, 8-bit fixed-point
// coefficients, horizontal pass then vertical, each rounded to uint8) on RGB uint8 (H, W, 3). Also the reference
// for the parity tests: CLIPImageProcessor resizes through PIL.
at::Tensor resize_bicubic_pil(const at::Tensor& rgb, int64_t out_height, int64_t out_width);

struct ClipPreprocess {
    int64_t size = 336;  // shortest edge and crop size (224 or 336 for CLIP-L/14)
    double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    double std[3] = {0.26862954, 0.26130258, 0.27577711};
};
// RGB uint8 (H, W, 3) -> float32 (3, size, size): shortest edge to `size` (long edge int(size·long/short)), centre
// crop (top = (h − size) / 2 rounded down, as transformers' center_crop), x/255, (x − mean)/std.
at::Tensor clip_preprocess(const at::Tensor& rgb, const ClipPreprocess& options = {});
// The inverse of the normalisation, for display: float (3, S, S) CLIP pixels -> RGB uint8 (S, S, 3) codes
// round((x·std + mean)·255) clamped to [0, 255] — the resized, cropped image the model sees.
at::Tensor clip_pixels_to_rgb(const at::Tensor& pixels, const ClipPreprocess& options = {});
// load_image + clip_preprocess.
at::Tensor load_clip_image(const std::string& path, const ClipPreprocess& options = {});

}  // namespace aviary::vision
