// Shared ImGui widgets: the HelpMarker tooltip pattern (imgui_demo.cpp), buttons the script can press,
// waiting dots (Tracy's DrawWaitingDots idea), ImDrawList line plots with ticks, hover readout and log-y
// (style_anchors §4.6), the dB colour bar (§4.4) and the sampling knobs shared by chat and VQA (§4.2).
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "app_state.h"
#include "aviary/core/sampler.h"

namespace aviary::studio {

void help_marker(const char* text);
// ImGui::Button, or the script pressing it (AppState::pending_click); greyed out when !enabled.
bool studio_button(AppState& app, const char* label, bool enabled = true, ImVec2 size = ImVec2(0, 0));
const char* waiting_dots(double time);  // ".", "..", "..."

struct PlotLine {
    const std::vector<double>* x;
    const std::vector<double>* y;
    ImU32 color;
    const char* label;
};
// A line plot in a child region of `size`; axes from data_range/nice_ticks; hover shows the nearest point.
void line_plot(const char* id, ImVec2 size, const std::vector<PlotLine>& lines, bool log_y, const char* x_label,
               const char* y_format);
// A vertical colour bar for [lo, hi] with tick labels in `format` (e.g. "%.0f dB").
void colour_bar(const char* id, ImVec2 size, double lo, double hi, const char* format);
// The RWKV sampling knobs (ChatRWKV PIPELINE_ARGS names and defaults), each with a tooltip; disabled while
// `busy`. Returns true when a value changed.
bool sampling_knobs(SamplerOptions& o, int& max_tokens, bool busy);
std::string human_bytes(double bytes);

}  // namespace aviary::studio
