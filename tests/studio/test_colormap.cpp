// Colour maps (apps/studio/colormap.cpp): the documented end points, luminance rising monotonically over the
// whole LUT (so dB reads as brightness), clamping and NaN handling of the RGBA mapping.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "colormap.h"

using namespace aviary::studio;

TEST(StudioColormap, EndPointsAreTheControlPoints) {
    const Rgb lo = colormap_at(Colormap::Heat, 0.f), hi = colormap_at(Colormap::Heat, 1.f);
    EXPECT_NEAR(lo.r, 0.00f, 1e-6f);
    EXPECT_NEAR(lo.g, 0.00f, 1e-6f);
    EXPECT_NEAR(lo.b, 0.02f, 1e-6f);
    EXPECT_NEAR(hi.r, 0.99f, 1e-6f);
    EXPECT_NEAR(hi.g, 0.95f, 1e-6f);
    EXPECT_NEAR(hi.b, 0.65f, 1e-6f);
    // Grey is the identity on each channel.
    for (float t : {0.f, 0.25f, 0.5f, 1.f}) EXPECT_NEAR(colormap_at(Colormap::Grey, t).g, t, 1e-6f);
}

TEST(StudioColormap, LuminanceRisesMonotonically) {
    for (Colormap map : {Colormap::Heat, Colormap::Grey}) {
        float prev = -1;
        int worst = -1;
        float worst_step = 1e9f;
        for (int i = 0; i < 1024; ++i) {
            const float l = luminance(colormap_at(map, float(i) / 1023.f));
            if (i > 0 && l - prev < worst_step) worst_step = l - prev, worst = i;
            prev = l;
        }
        EXPECT_GT(worst_step, 0.f) << "luminance falls at sample " << worst << " by " << worst_step;
    }
}

TEST(StudioColormap, LutMatchesColormapAt) {
    const auto lut = colormap_lut(Colormap::Heat);
    int worst = 0;
    for (int i = 0; i < 256; ++i) {
        const Rgb c = colormap_at(Colormap::Heat, float(i) / 255.f);
        const int r = int(lut[i] & 255), g = int((lut[i] >> 8) & 255), b = int((lut[i] >> 16) & 255);
        worst = std::max({worst, std::abs(r - int(std::lround(c.r * 255))), std::abs(g - int(std::lround(c.g * 255))),
                          std::abs(b - int(std::lround(c.b * 255)))});
        EXPECT_EQ(lut[i] >> 24, 255u);
    }
    EXPECT_EQ(worst, 0);
}

TEST(StudioColormap, RgbaMappingClampsAndHandlesNaN) {
    const auto lut = colormap_lut(Colormap::Heat);
    const std::vector<float> v = {-100.f, -80.f, -40.f, 0.f, 50.f, std::numeric_limits<float>::quiet_NaN()};
    const auto rgba = colormap_rgba(v, -80.f, 0.f, Colormap::Heat);
    ASSERT_EQ(rgba.size(), v.size() * 4);
    auto entry = [&](size_t i) {
        return uint32_t(rgba[4 * i]) | uint32_t(rgba[4 * i + 1]) << 8 | uint32_t(rgba[4 * i + 2]) << 16 | 255u << 24;
    };
    EXPECT_EQ(entry(0), lut[0]);    // below lo: clamped
    EXPECT_EQ(entry(1), lut[0]);    // lo
    EXPECT_EQ(entry(2), lut[128]);  // midpoint: round(127.5) = 128
    EXPECT_EQ(entry(3), lut[255]);  // hi
    EXPECT_EQ(entry(4), lut[255]);  // above hi: clamped
    EXPECT_EQ(entry(5), lut[0]);    // NaN
}
