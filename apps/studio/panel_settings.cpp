// Settings panel: model paths, tokenizer, worker threads, the `aviary` CLI used for training, and where they
// are saved ($XDG_CONFIG_HOME/aviary/studio.json, written atomically). Sampling values live in their panels
// and are saved with the rest.
#include <imgui.h>
#include <imgui_stdlib.h>

#include "widgets.h"

namespace aviary::studio {

void draw_settings_panel(AppState& app) {
    Settings& s = app.settings;
    ImGui::Text("Settings file: %s", app.settings_path.c_str());
    ImGui::Separator();
    ImGui::TextUnformatted("Chat model");
    ImGui::PushItemWidth(520);
    ImGui::InputTextWithHint("chat model", "(shipped) assets/models/music-eagle-L6-D256.safetensors", &s.chat.model);
    help_marker("Any official RWKV-5.2/6 .pth or .safetensors. Empty: the shipped byte-level ABC model.");
    int tok = s.chat.tokenizer == "world" ? 1 : 0;
    if (ImGui::Combo("tokenizer", &tok, "byte (one id per byte: ABC models)\0world (RWKV World vocabulary)\0"))
        s.chat.tokenizer = tok ? "world" : "byte";
    ImGui::InputTextWithHint("World vocabulary", "(default) rwkv_vocab_v20230424.txt", &s.chat.vocab);
    help_marker("Used with the World tokenizer. Empty: $AVIARY_VOCAB, the installed copy, then assets/vocab.");
    if (studio_button(app, "Load chat model", !app.chat.generating)) {
        app.chat.model_desc = "loading...";
        std::string path = s.chat.model;
        try {
            if (path.empty()) path = music::default_model_path();
            app.worker->load_chat_model(path, s.chat.tokenizer, s.chat.vocab);
        } catch (const std::exception& e) {
            app.add_error(Channel::Chat, e.what());
        }
    }
    ImGui::Separator();
    ImGui::TextUnformatted("Music model");
    ImGui::InputTextWithHint("music model", "(shipped) music-eagle-L6-D256.safetensors", &s.music.model);
    help_marker("A byte-level ABC model (.pth or .safetensors); loaded on the next Generate.");
    ImGui::Separator();
    ImGui::InputTextWithHint("aviary CLI", "(default) beside aviary-studio, then $PATH", &s.aviary_path);
    help_marker("The `aviary` command the Training panel runs (`aviary train text ...`).");
    ImGui::SliderInt("worker threads", &s.threads, 1, 16);
    help_marker(
        "LibTorch threads of the model worker; applies at the next start. 1 leaves a core for the UI on "
        "small machines.");
    ImGui::PopItemWidth();
    ImGui::Separator();
    if (studio_button(app, "Save settings")) {
        try {
            save_settings(app.settings_path, s);
            app.add_log(Channel::App, "info", "settings saved to '" + app.settings_path + "'");
        } catch (const std::exception& e) {
            app.add_error(Channel::App, e.what());
        }
    }
    ImGui::SameLine();
    ImGui::TextDisabled("(also saved on exit)");
    ImGui::Separator();
    ImGui::TextUnformatted("Modules in this build");
    ImGui::BulletText("chat, music, training: available");
    ImGui::BulletText("image QA: %s", app.worker->vision_status().c_str());
    ImGui::BulletText("audio tags: %s", app.worker->audio_status().c_str());
}

}  // namespace aviary::studio
