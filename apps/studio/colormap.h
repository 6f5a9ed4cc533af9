// Colour maps for the spectrogram texture and its dB colour bar: a perceptually ordered "heat" map
// (black → violet → red → orange → pale yellow, luminance rising monotonically, so dB reads as brightness)
// and grey. A 256-entry LUT maps values to RGBA8 on the worker (style_anchors §4.4, ImPlot's heatmap design).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace aviary::studio {

enum class Colormap { Heat, Grey };

struct Rgb {
    float r = 0, g = 0, b = 0;  // [0, 1]
};

// The colour at t in [0, 1] (clamped): piecewise-linear between the map's control points.
Rgb colormap_at(Colormap map, float t);
// Relative luminance (Rec. 709 weights on the linear values) of a colour.
float luminance(const Rgb& c);
// 256 entries, packed as ImGui's IM_COL32 (R in the low byte, alpha 255).
std::array<uint32_t, 256> colormap_lut(Colormap map);
// Maps values to RGBA8 through the LUT: lo → entry 0, hi → entry 255, clamped; NaN → entry 0.
std::vector<uint8_t> colormap_rgba(const std::vector<float>& values, float lo, float hi, Colormap map);

}  // namespace aviary::studio
