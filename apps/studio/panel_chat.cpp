// Chat panel: model line, streamed answer with auto-scroll (imgui_demo ExampleAppConsole rule: follow only
// when already at the bottom), Stop / Regenerate (state snapshot) / Branch, session save/load, the sampling
// knobs (disabled while generating), tokens/s and state size in the status line (style_anchors §4.1–4.2).
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cstdio>

#include "widgets.h"

namespace aviary::studio {

namespace {
GenerateOptions generate_options(const AppState& app) {
    GenerateOptions o;
    o.max_tokens = app.settings.chat.max_tokens;
    o.sampler = app.settings.chat.sampler;
    return o;
}
ChatBranch& active_branch(AppState& app) {
    return app.chat.branches[size_t(app.chat.active)];
}
}  // namespace

void chat_on_event(AppState& app, const Event& e) {
    ChatState& c = app.chat;
    switch (e.kind) {
        case EventKind::ModelLoaded:
            c.model_desc = c.loaded_desc = e.text, c.model_loaded = true, c.state_bytes = e.a;
            break;
        case EventKind::Text: {
            auto& msgs = active_branch(app).messages;
            if (msgs.empty() || msgs.back().role != "model") msgs.push_back({"model", ""});
            msgs.back().text += e.text;
            break;
        }
        case EventKind::Stats:
            c.tokens_per_s = e.a, c.state_bytes = e.b, c.tokens = e.n;
            break;
        case EventKind::Done:
            c.generating = false, c.stopping = false, c.stop_reason = e.text;
            {
                char buf[160];
                std::snprintf(buf, sizeof buf, "chat: %lld tokens, prefill %.2f s, decode %.2f s (%s)",
                              static_cast<long long>(e.n), e.a, e.b, e.text.c_str());
                app.add_log(Channel::Chat, "info", buf);
            }
            break;
        case EventKind::Regenerate: {
            auto& msgs = active_branch(app).messages;
            if (!msgs.empty() && msgs.back().role == "model") msgs.pop_back();
            break;
        }
        case EventKind::Branched: {
            ChatBranch b = active_branch(app);
            b.name = "branch " + std::to_string(e.n);
            c.branches.resize(std::max(c.branches.size(), size_t(e.n) + 1));
            c.branches[size_t(e.n)] = std::move(b);
            c.active = int(e.n);
            break;
        }
        case EventKind::SessionLoaded:
            try {
                active_branch(app).messages = history_from_json(e.text);
            } catch (const std::exception& ex) {
                app.add_error(Channel::Chat, ex.what());
            }
            break;
        case EventKind::Error:
            c.generating = false, c.stopping = false;
            if (e.text.rfind("load chat model", 0) == 0)  // the worker keeps the previous model on failure
                c.model_desc =
                    c.model_loaded ? c.loaded_desc + " (the new model failed to load)" : "no model (loading failed)";
            break;
        case EventKind::JobFinished:
            if (e.text == "chat" || e.text == "regenerate") c.generating = false, c.stopping = false;
            break;
        default:
            break;
    }
}

void draw_chat_panel(AppState& app) {
    ChatState& c = app.chat;
    ImGui::Text("Model: %s", c.model_desc.c_str());
    if (app.settings.chat.tokenizer == "byte") {
        ImGui::SameLine();
        ImGui::TextDisabled("(?)");
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip(
                "No text chat model is shipped: the default is the shipped byte-level ABC music model,\n"
                "so it continues text as ABC notation. Pick any RWKV .pth/.safetensors in Settings\n"
                "(World tokenizer for World models) or drop one on the window.");
        ImGui::TextColored(
            ImVec4(0.95f, 0.8f, 0.4f, 1),
            "Shipped byte-level ABC model with the byte tokenizer: it continues text as music notation.");
    }
    // model picker (also in Settings, or drop a .pth/.safetensors on the window)
    ChatSettings& cs = app.settings.chat;
    if (c.generating) ImGui::BeginDisabled();
    ImGui::SetNextItemWidth(420);
    ImGui::InputTextWithHint("##chatmodel", "(shipped) music-eagle-L6-D256.safetensors", &cs.model);
    ImGui::SameLine();
    int tok = cs.tokenizer == "world" ? 1 : 0;
    ImGui::SetNextItemWidth(90);
    if (ImGui::Combo("##chattok", &tok, "byte\0world\0")) cs.tokenizer = tok ? "world" : "byte";
    if (c.generating) ImGui::EndDisabled();
    ImGui::SameLine();
    if (studio_button(app, "Load model", !c.generating)) {
        try {
            const std::string path = cs.model.empty() ? music::default_model_path() : cs.model;
            c.model_desc = "loading...";
            app.worker->load_chat_model(path, cs.tokenizer, cs.vocab);
        } catch (const std::exception& e) {
            app.add_error(Channel::Chat, e.what());
        }
    }
    help_marker(
        "Any RWKV-5.2/6 .pth or .safetensors; the World tokenizer for World models, byte for byte-level "
        "models such as the shipped ABC model. Empty path: the shipped model.");
    // branches
    ImGui::SetNextItemWidth(160);
    if (ImGui::BeginCombo("branch", c.branches[size_t(c.active)].name.c_str())) {
        for (int i = 0; i < int(c.branches.size()); ++i)
            if (ImGui::Selectable(c.branches[size_t(i)].name.c_str(), i == c.active) && i != c.active &&
                !c.generating) {
                c.active = i;
                app.worker->chat_switch_branch(i);  // UI branch i is the worker's branch i
            }
        ImGui::EndCombo();
    }
    help_marker(
        "Branch stores a copy of the current state and history; switching restores that state "
        "(RWKV's state is a fixed-size tensor, so a copy is cheap).");

    const float knobs_w = 330;
    ImGui::BeginChild("##chat_left", ImVec2(-knobs_w, 0));
    const float input_h = 90;
    ImGui::BeginChild(
        "##history", ImVec2(0, -input_h - ImGui::GetFrameHeightWithSpacing() * 2 - 2 * ImGui::GetStyle().ItemSpacing.y),
        true);
    ImGui::PushTextWrapPos(0);
    int i = 0;
    for (const auto& m : c.branches[size_t(c.active)].messages) {
        ImGui::PushID(i++);
        ImGui::TextColored(m.role == "user" ? ImVec4(0.5f, 0.8f, 1, 1) : ImVec4(0.6f, 1, 0.6f, 1), "%s",
                           m.role == "user" ? "You" : "Model");
        ImGui::SameLine();
        if (ImGui::SmallButton("Copy")) ImGui::SetClipboardText(m.text.c_str());
        ImGui::TextUnformatted(m.text.c_str());
        ImGui::Separator();
        ImGui::PopID();
    }
    if (c.generating) ImGui::TextDisabled("Generating%s", waiting_dots(ImGui::GetTime()));
    ImGui::PopTextWrapPos();
    if (c.auto_scroll && ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 4) ImGui::SetScrollHereY(1.0f);
    ImGui::EndChild();

    ImGui::InputTextMultiline("##input", &c.input, ImVec2(-1, input_h));
    const bool can_send = c.model_loaded && !c.generating && !c.input.empty();
    if (studio_button(app, "Generate", can_send)) {
        active_branch(app).messages.push_back({"user", c.input});
        ChatRequest r;
        r.user_text = c.input;
        r.chat_format = app.settings.chat.chat_format;
        r.options = generate_options(app);
        app.worker->chat_send(r);
        c.generating = true, c.stop_reason.clear();
    }
    ImGui::SameLine();
    if (studio_button(app, c.stopping ? "Stopping...##stop" : "Stop##stop", c.generating && !c.stopping)) {
        app.worker->stop();
        c.stopping = true;
    }
    ImGui::SameLine();
    const auto& msgs = c.branches[size_t(c.active)].messages;
    if (studio_button(app, "Regenerate", !c.generating && !msgs.empty() && msgs.back().role == "model")) {
        app.settings.chat.sampler.seed += 1;  // a new draw from the same state
        app.worker->chat_regenerate(generate_options(app));
        c.generating = true;
    }
    ImGui::SameLine();
    if (studio_button(app, "Branch", !c.generating && c.model_loaded)) app.worker->chat_branch();
    ImGui::SameLine();
    if (studio_button(app, "Clear", !c.generating && c.model_loaded)) {
        c.branches[size_t(c.active)].messages.clear();
        app.worker->chat_reset();
    }
    ImGui::SetNextItemWidth(260);
    ImGui::InputTextWithHint("##session", "session file (.safetensors)", &c.session_path);
    ImGui::SameLine();
    if (studio_button(app, "Save session", !c.generating && c.model_loaded && !c.session_path.empty()))
        app.worker->chat_save_session(c.session_path, history_to_json(c.branches[size_t(c.active)].messages));
    ImGui::SameLine();
    if (studio_button(app, "Load session", !c.generating && c.model_loaded && !c.session_path.empty()))
        app.worker->chat_load_session(c.session_path);
    ImGui::EndChild();

    ImGui::SameLine();
    ImGui::BeginChild("##knobs", ImVec2(0, 0), true);
    ImGui::TextUnformatted("Sampling (ChatRWKV PIPELINE_ARGS)");
    ImGui::Separator();
    sampling_knobs(app.settings.chat.sampler, app.settings.chat.max_tokens, c.generating);
    if (c.generating) ImGui::BeginDisabled();
    ImGui::Checkbox("chat format", &app.settings.chat.chat_format);
    if (c.generating) ImGui::EndDisabled();
    help_marker(
        "Wrap each message as \"User: ...\\n\\nAssistant:\" and stop at \"\\n\\nUser:\" (for World chat "
        "models). Off: the text is continued as is.");
    ImGui::Separator();
    const SamplerOptions& so = app.settings.chat.sampler;
    ImGui::TextDisabled("effective: T=%.2f top_p=%.2f top_k=%d seed=%llu", so.temperature, so.top_p, so.top_k,
                        static_cast<unsigned long long>(so.seed));
    if (!c.stop_reason.empty()) ImGui::TextDisabled("last answer: %s", c.stop_reason.c_str());
    ImGui::EndChild();
}

}  // namespace aviary::studio
