// Log panel: every worker message, job start and error with time and channel, a text filter and auto-scroll
// (imgui_demo.cpp ExampleAppLog; style_anchors §4.9).
#include <imgui.h>
#include <imgui_stdlib.h>

#include "widgets.h"

namespace aviary::studio {

void draw_log_panel(AppState& app) {
    ImGui::SetNextItemWidth(300);
    ImGui::InputTextWithHint("##filter", "filter (substring)", &app.log_filter);
    ImGui::SameLine();
    ImGui::Checkbox("auto-scroll", &app.log_auto_scroll);
    ImGui::SameLine();
    if (studio_button(app, "Clear log")) app.log.clear();
    ImGui::SameLine();
    if (studio_button(app, "Copy log")) {
        std::string all;
        for (const auto& l : app.log) all += "[" + l.channel + "] " + l.level + ": " + l.text + "\n";
        ImGui::SetClipboardText(all.c_str());
    }
    ImGui::BeginChild("##log", ImVec2(0, 0), true, ImGuiWindowFlags_HorizontalScrollbar);
    for (const auto& l : app.log) {
        if (!app.log_filter.empty() && l.text.find(app.log_filter) == std::string::npos &&
            l.channel.find(app.log_filter) == std::string::npos && l.level.find(app.log_filter) == std::string::npos)
            continue;
        const ImVec4 colour = l.level == "error"   ? ImVec4(1, 0.45f, 0.4f, 1)
                              : l.level == "debug" ? ImVec4(0.6f, 0.6f, 0.6f, 1)
                                                   : ImVec4(0.9f, 0.9f, 0.9f, 1);
        ImGui::TextColored(colour, "%8.2f  %-8s %-5s %s", l.time, l.channel.c_str(), l.level.c_str(), l.text.c_str());
    }
    if (app.log_auto_scroll && ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 4) ImGui::SetScrollHereY(1.0f);
    ImGui::EndChild();
}

}  // namespace aviary::studio
