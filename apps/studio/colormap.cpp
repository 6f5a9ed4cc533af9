// Colour maps (colormap.h): control points chosen for this project, interpolated linearly in sRGB.
#include "colormap.h"

#include <algorithm>
#include <cmath>

namespace aviary::studio {

namespace {
// Heat: luminance rises at every control point (checked by tests/studio/test_colormap.cpp).
constexpr Rgb kHeat[] = {{0.00f, 0.00f, 0.02f}, {0.22f, 0.05f, 0.42f}, {0.58f, 0.10f, 0.45f},
                         {0.88f, 0.28f, 0.22f}, {0.98f, 0.60f, 0.10f}, {0.99f, 0.95f, 0.65f}};
constexpr Rgb kGrey[] = {{0, 0, 0}, {1, 1, 1}};
}  // namespace

Rgb colormap_at(Colormap map, float t) {
    const Rgb* pts = map == Colormap::Heat ? kHeat : kGrey;
    const int n = map == Colormap::Heat ? int(std::size(kHeat)) : int(std::size(kGrey));
    if (!(t > 0)) t = 0;  // also NaN
    if (t > 1) t = 1;
    const float x = t * float(n - 1);
    const int i = std::min(int(x), n - 2);
    const float f = x - float(i);
    const Rgb& a = pts[i];
    const Rgb& b = pts[i + 1];
    return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

float luminance(const Rgb& c) {
    auto lin = [](float v) { return v <= 0.04045f ? v / 12.92f : std::pow((v + 0.055f) / 1.055f, 2.4f); };
    return 0.2126f * lin(c.r) + 0.7152f * lin(c.g) + 0.0722f * lin(c.b);
}

std::array<uint32_t, 256> colormap_lut(Colormap map) {
    std::array<uint32_t, 256> lut{};
    for (int i = 0; i < 256; ++i) {
        const Rgb c = colormap_at(map, float(i) / 255.f);
        auto q = [](float v) { return uint32_t(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); };
        lut[i] = q(c.r) | (q(c.g) << 8) | (q(c.b) << 16) | (255u << 24);
    }
    return lut;
}

std::vector<uint8_t> colormap_rgba(const std::vector<float>& values, float lo, float hi, Colormap map) {
    const auto lut = colormap_lut(map);
    std::vector<uint8_t> out(values.size() * 4);
    const float scale = hi > lo ? 255.f / (hi - lo) : 0.f;
    for (size_t i = 0; i < values.size(); ++i) {
        const float v = values[i];
        const int idx = std::isnan(v) ? 0 : int(std::clamp(std::lround((v - lo) * scale), 0L, 255L));
        const uint32_t c = lut[idx];
        out[4 * i + 0] = uint8_t(c & 255), out[4 * i + 1] = uint8_t((c >> 8) & 255);
        out[4 * i + 2] = uint8_t((c >> 16) & 255), out[4 * i + 3] = 255;
    }
    return out;
}

}  // namespace aviary::studio
