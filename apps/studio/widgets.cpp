// Shared widgets (widgets.h), drawn with ImGui 1.86 and ImDrawList.
#include "widgets.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "colormap.h"
#include "plot_data.h"

namespace aviary::studio {

void help_marker(const char* text) {
    ImGui::SameLine();
    ImGui::TextDisabled("(?)");
    if (ImGui::IsItemHovered()) {
        ImGui::BeginTooltip();
        ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30.0f);
        ImGui::TextUnformatted(text);
        ImGui::PopTextWrapPos();
        ImGui::EndTooltip();
    }
}

bool studio_button(AppState& app, const char* label, bool enabled, ImVec2 size) {
    if (!enabled) ImGui::BeginDisabled();
    bool pressed = ImGui::Button(label, size);
    if (!enabled) ImGui::EndDisabled();
    if (enabled && app.consume_click(label)) pressed = true;
    return pressed && enabled;
}

const char* waiting_dots(double time) {
    static const char* dots[] = {".  ", ".. ", "..."};
    return dots[int(time * 3) % 3];
}

std::string human_bytes(double bytes) {
    char buf[32];
    if (bytes >= 1 << 20)
        std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1 << 20));
    else if (bytes >= 1 << 10)
        std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
    else
        std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    return buf;
}

void line_plot(const char* id, ImVec2 size, const std::vector<PlotLine>& lines, bool log_y, const char* x_label,
               const char* y_format) {
    ImGui::BeginChild(id, size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float left = 64, bottom = 22, top = 6, right = 10;
    const ImVec2 a(p0.x + left, p0.y + top), b(p0.x + avail.x - right, p0.y + avail.y - bottom);
    std::vector<double> all_x, all_y;
    for (const auto& l : lines) {
        all_x.insert(all_x.end(), l.x->begin(), l.x->end());
        all_y.insert(all_y.end(), l.y->begin(), l.y->end());
    }
    const AxisRange xr = data_range(all_x, 0.0, false), yr = data_range(all_y, 0.05, log_y);
    auto sx = [&](double x) { return float(a.x + (x - xr.lo) / (xr.hi - xr.lo) * (b.x - a.x)); };
    auto sy = [&](double y) {
        const double u = log_y ? (y > 0 ? std::log10(y) : yr.lo) : y;
        return float(b.y - (u - yr.lo) / (yr.hi - yr.lo) * (b.y - a.y));
    };
    dl->AddRectFilled(a, b, IM_COL32(20, 22, 28, 255));
    const ImU32 grid = IM_COL32(70, 70, 80, 255), text = IM_COL32(200, 200, 200, 255);
    char buf[48];
    for (double t : nice_ticks(yr.lo, yr.hi, 5)) {
        const float y = float(b.y - (t - yr.lo) / (yr.hi - yr.lo) * (b.y - a.y));
        dl->AddLine(ImVec2(a.x, y), ImVec2(b.x, y), grid);
        std::snprintf(buf, sizeof buf, y_format, log_y ? std::pow(10.0, t) : t);
        dl->AddText(ImVec2(p0.x + 2, y - 7), text, buf);
    }
    for (double t : nice_ticks(xr.lo, xr.hi, 6)) {
        const float x = sx(t);
        dl->AddLine(ImVec2(x, a.y), ImVec2(x, b.y), grid);
        std::snprintf(buf, sizeof buf, "%g", t);
        dl->AddText(ImVec2(x - 8, b.y + 3), text, buf);
    }
    dl->AddText(ImVec2(p0.x + 2, b.y + 3), IM_COL32(150, 150, 160, 255), x_label);  // below the y labels
    dl->PushClipRect(a, b, true);
    for (const auto& l : lines) {
        const size_t n = std::min(l.x->size(), l.y->size());
        // At most ~2 points per pixel column: long runs stay cheap to draw.
        const size_t stride = std::max<size_t>(1, n / size_t(std::max(1.f, (b.x - a.x) * 2)));
        std::vector<ImVec2> pts;
        for (size_t i = 0; i < n; i += stride) pts.emplace_back(sx((*l.x)[i]), sy((*l.y)[i]));
        if (n > 0 && (n - 1) % stride != 0) pts.emplace_back(sx(l.x->back()), sy(l.y->back()));
        if (pts.size() >= 2) dl->AddPolyline(pts.data(), int(pts.size()), l.color, 0, 1.5f);
    }
    dl->PopClipRect();
    // legend
    float lx = a.x + 8;
    for (const auto& l : lines) {
        dl->AddRectFilled(ImVec2(lx, a.y + 6), ImVec2(lx + 10, a.y + 16), l.color);
        dl->AddText(ImVec2(lx + 14, a.y + 3), text, l.label);
        lx += 24 + ImGui::CalcTextSize(l.label).x;
    }
    ImGui::InvisibleButton("##plot", ImVec2(std::max(1.f, avail.x), std::max(1.f, avail.y)));
    if (ImGui::IsItemHovered() && !lines.empty() && !lines[0].x->empty()) {
        const double mx = xr.lo + (ImGui::GetIO().MousePos.x - a.x) / (b.x - a.x) * (xr.hi - xr.lo);
        ImGui::BeginTooltip();
        for (const auto& l : lines) {
            const int64_t i = nearest_index(*l.x, mx);
            if (i < 0) continue;
            const float x = sx((*l.x)[size_t(i)]);
            dl->AddLine(ImVec2(x, a.y), ImVec2(x, b.y), IM_COL32(255, 255, 255, 90));
            dl->AddCircleFilled(ImVec2(x, sy((*l.y)[size_t(i)])), 3.5f, l.color);
            std::snprintf(buf, sizeof buf, y_format, (*l.y)[size_t(i)]);
            ImGui::Text("%s at %s %g: %s", l.label, x_label, (*l.x)[size_t(i)], buf);
        }
        ImGui::EndTooltip();
    }
    ImGui::EndChild();
}

void colour_bar(const char* id, ImVec2 size, double lo, double hi, const char* format) {
    ImGui::BeginChild(id, size, false, ImGuiWindowFlags_NoScrollbar);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float bar_w = 16, top = 8, bottom = 8;
    const float y0 = p0.y + top, y1 = p0.y + avail.y - bottom;
    const int steps = 64;
    for (int i = 0; i < steps; ++i) {
        const float t0 = float(i) / steps, t1 = float(i + 1) / steps;
        const Rgb c = colormap_at(Colormap::Heat, (t0 + t1) / 2);
        dl->AddRectFilled(ImVec2(p0.x, y1 - (y1 - y0) * t1), ImVec2(p0.x + bar_w, y1 - (y1 - y0) * t0),
                          IM_COL32(int(c.r * 255), int(c.g * 255), int(c.b * 255), 255));
    }
    dl->AddRect(ImVec2(p0.x, y0), ImVec2(p0.x + bar_w, y1), IM_COL32(120, 120, 130, 255));
    char buf[32];
    for (double t : nice_ticks(lo, hi, 6)) {
        const float y = float(y1 - (t - lo) / (hi - lo) * (y1 - y0));
        dl->AddLine(ImVec2(p0.x + bar_w, y), ImVec2(p0.x + bar_w + 4, y), IM_COL32(200, 200, 200, 255));
        std::snprintf(buf, sizeof buf, format, t);
        dl->AddText(ImVec2(p0.x + bar_w + 6, y - 7), IM_COL32(200, 200, 200, 255), buf);
    }
    ImGui::EndChild();
}

bool sampling_knobs(SamplerOptions& o, int& max_tokens, bool busy) {
    bool changed = false;
    if (busy) ImGui::BeginDisabled();
    ImGui::PushItemWidth(160);
    changed |= ImGui::SliderFloat("temperature", &o.temperature, 0.0f, 2.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker(
        "Probabilities are raised to 1/temperature after the top-p/top-k cut (ChatRWKV order). "
        "0 = greedy. Default 1.0.");
    changed |= ImGui::SliderFloat("top_p", &o.top_p, 0.0f, 1.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Keep the most likely tokens whose probabilities add up to top_p (ties kept). Default 0.85.");
    changed |= ImGui::SliderInt("top_k", &o.top_k, 0, 100, "%d", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Keep only the k most likely tokens; 0 = off. Default 0.");
    changed |=
        ImGui::SliderFloat("alpha_presence", &o.presence_penalty, 0.0f, 2.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Subtracted once from the logit of every token already generated. Default 0.2.");
    changed |=
        ImGui::SliderFloat("alpha_frequency", &o.frequency_penalty, 0.0f, 2.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Subtracted per (decayed) occurrence of a generated token. Default 0.2.");
    changed |= ImGui::SliderFloat("alpha_decay", &o.penalty_decay, 0.9f, 1.0f, "%.3f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Occurrence counts are multiplied by this after every token. Default 0.996.");
    changed |= ImGui::SliderInt("max tokens", &max_tokens, 1, 2000, "%d", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Stop after this many generated tokens.");
    int seed = int(o.seed);
    if (ImGui::InputInt("seed", &seed)) o.seed = uint64_t(std::max(0, seed)), changed = true;
    ImGui::SameLine();
    if (ImGui::SmallButton("dice")) {
        o.seed = std::random_device{}() % 100000;
        changed = true;
    }
    help_marker("Seed of the sampler: the same seed, prompt and state repeat the answer. 'dice' draws a new one.");
    if (ImGui::SmallButton("Reset to defaults")) {
        const SamplerOptions d;
        o.temperature = d.temperature, o.top_p = d.top_p, o.top_k = d.top_k;
        o.presence_penalty = d.presence_penalty, o.frequency_penalty = d.frequency_penalty;
        o.penalty_decay = d.penalty_decay;
        max_tokens = 200;
        changed = true;
    }
    ImGui::PopItemWidth();
    if (busy) ImGui::EndDisabled();
    return changed;
}

}  // namespace aviary::studio
