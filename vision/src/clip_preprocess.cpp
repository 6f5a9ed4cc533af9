// CLIP preprocessing as transformers' CLIPImageProcessor (PIL bicubic resize of the shortest edge, centre crop,
// rescale 1/255 then normalise in float32) — spec A.12. The resize reproduces Pillow's Resample.c for 8-bit
// images (bicubic a = −0.5, coefficients normalised to 22-bit fixed point, horizontal pass first).
#include <torch/torch.h>

#include <cmath>

#include "aviary/core/error.h"
#include "aviary/vision/image.h"

namespace aviary::vision {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

double bicubic(double x) {  // Keys cubic with a = −0.5 (Pillow's bicubic_filter), support 2
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Coeffs {
    int ksize = 0;
    std::vector<int> bounds;  // per output: first input index, count
    std::vector<int32_t> kk;  // fixed-point weights, out × ksize
};

// Pillow precompute_coeffs + normalize_coeffs_8bpc for in_size -> out_size over the whole input.
Coeffs precompute(int in_size, int out_size) {
    const double scale = double(in_size) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 2.0 * filterscale;
    Coeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    c.bounds.resize(size_t(out_size) * 2);
    c.kk.assign(size_t(out_size) * c.ksize, 0);
    std::vector<double> k(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = int(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < c.ksize; ++x) {
            const double v = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
            c.kk[size_t(xx) * c.ksize + x] =
                v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
        }
        c.bounds[xx * 2] = xmin;
        c.bounds[xx * 2 + 1] = xmax;
    }
    return c;
}

uint8_t clip8(int64_t v) {
    v >>= kPrecisionBits;
    return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One separable pass along `axis` (1 = width, 0 = height) of a contiguous (H, W, 3) uint8 image.
at::Tensor resample_pass(const at::Tensor& in, int64_t out_size, int axis) {
    const int64_t H = in.size(0), W = in.size(1);
    const int64_t in_size = axis == 1 ? W : H;
    const Coeffs c = precompute(int(in_size), int(out_size));
    const int64_t oh = axis == 1 ? H : out_size, ow = axis == 1 ? out_size : W;
    auto out = torch::empty({oh, ow, 3}, torch::kUInt8);
    const uint8_t* src = in.data_ptr<uint8_t>();
    uint8_t* dst = out.data_ptr<uint8_t>();
    for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
            const int64_t o = axis == 1 ? x : y;
            const int xmin = c.bounds[o * 2], n = c.bounds[o * 2 + 1];
            const int32_t* k = &c.kk[size_t(o) * c.ksize];
            for (int ch = 0; ch < 3; ++ch) {
                int64_t ss = int64_t(1) << (kPrecisionBits - 1);
                for (int i = 0; i < n; ++i) {
                    const int64_t iy = axis == 1 ? y : xmin + i, ix = axis == 1 ? xmin + i : x;
                    ss += int64_t(src[(iy * W + ix) * 3 + ch]) * k[i];
                }
                dst[(y * ow + x) * 3 + ch] = clip8(ss);
            }
        }
    return out;
}

}  // namespace

at::Tensor resize_bicubic_pil(const at::Tensor& rgb, int64_t out_height, int64_t out_width) {
    AVIARY_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte,
                 "resize expects an RGB uint8 image (H, W, 3)");
    AVIARY_CHECK(out_height >= 1 && out_width >= 1, "resize to an empty size ", out_width, "x", out_height);
    at::Tensor x = rgb.contiguous();
    if (out_width != x.size(1)) x = resample_pass(x, out_width, 1);  // Pillow: horizontal first
    if (out_height != x.size(0)) x = resample_pass(x, out_height, 0);
    return x;
}

at::Tensor clip_preprocess(const at::Tensor& rgb, const ClipPreprocess& o) {
    AVIARY_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte,
                 "CLIP preprocessing expects an RGB uint8 image (H, W, 3)");
    AVIARY_CHECK(o.size >= 1, "CLIP image size must be positive, got ", o.size);
    const int64_t h = rgb.size(0), w = rgb.size(1);
    AVIARY_CHECK(h >= 1 && w >= 1, "empty image");
    // transformers get_resize_output_image_size(default_to_square=False): short -> size, long -> int(size·long/short)
    const int64_t short_side = std::min(h, w), long_side = std::max(h, w);
    const int64_t new_long = int64_t(double(o.size) * double(long_side) / double(short_side));
    const int64_t nh = h <= w ? o.size : new_long, nw = h <= w ? new_long : o.size;
    at::Tensor r = resize_bicubic_pil(rgb, nh, nw);
    // transformers center_crop: top = (h − crop) // 2 (OpenAI/torchvision round((h − crop)/2) differs by one pixel
    // for some odd differences; the HF processor is the parity target).
    const int64_t top = (nh - o.size) / 2, left = (nw - o.size) / 2;
    r = r.slice(0, top, top + o.size).slice(1, left, left + o.size);
    // rescale: float32(u8 · (1/255)); normalise in float32: (x − mean) / std
    at::Tensor x = (r.to(torch::kDouble) * (1.0 / 255.0)).to(torch::kFloat).permute({2, 0, 1}).contiguous();
    auto mean = torch::tensor({o.mean[0], o.mean[1], o.mean[2]}, torch::kDouble).to(torch::kFloat).view({3, 1, 1});
    auto sd = torch::tensor({o.std[0], o.std[1], o.std[2]}, torch::kDouble).to(torch::kFloat).view({3, 1, 1});
    return ((x - mean) / sd).contiguous();
}

at::Tensor clip_pixels_to_rgb(const at::Tensor& pixels, const ClipPreprocess& o) {
    AVIARY_CHECK(pixels.dim() == 3 && pixels.size(0) == 3 && pixels.is_floating_point(),
                 "CLIP pixels must be a float tensor (3, H, W), got ", pixels.sizes());
    // c = round((x·std + mean)·255): clip_preprocess's (x/255 − mean)/std undone, in float64
    auto mean = torch::tensor({o.mean[0], o.mean[1], o.mean[2]}, torch::kDouble).view({3, 1, 1});
    auto sd = torch::tensor({o.std[0], o.std[1], o.std[2]}, torch::kDouble).view({3, 1, 1});
    const at::Tensor codes = ((pixels.to(torch::kDouble) * sd + mean) * 255.0).round().clamp(0, 255).to(torch::kByte);
    return codes.permute({1, 2, 0}).contiguous();  // (H, W, 3)
}

}  // namespace aviary::vision
