// Music panel: control fields (meter, key, unit length, control codes, seed) instead of raw prompt text, the
// ABC streaming in, a validity badge from music::check_abc, sheet music through abcm2ps → SVG → rsvg-convert →
// PNG, and MIDI / WAV export and playback through abc2midi and fluidsynth — each tool optional, with a message
// naming the Debian package when it is missing (style_anchors §4.5; ChatRWKV music/run.py sampling).
#include <imgui.h>
#include <imgui_stdlib.h>

#include <cstdio>

#include "aviary/music/abc_tools.h"
#include "child_process.h"
#include "gl_texture.h"
#include "widgets.h"

namespace aviary::studio {

void music_on_event(AppState& app, const Event& e) {
    MusicState& s = app.music;
    switch (e.kind) {
        case EventKind::ModelLoaded:
            s.model_desc = e.text;
            break;
        case EventKind::Text:
            s.abc += e.text;
            s.check_dirty = true;
            break;
        case EventKind::Stats:
            s.bytes_per_s = e.a, s.bytes = e.n;
            break;
        case EventKind::Done:
            s.generating = false, s.stopping = false, s.stop_reason = e.text;
            s.check = music::check_abc(music::to_abc_file_text(s.abc));
            s.check_dirty = false;
            break;
        case EventKind::SheetReady:
            s.sheet = e.image, s.rendering = false;
            app.main_queue.post([&app, img = e.image] { texture_upload(app.music.sheet_tex, *img); });
            break;
        case EventKind::Message:
            s.message = e.text;
            app.add_log(Channel::Music, "info", e.text);
            break;
        case EventKind::Error:
            s.message = e.text, s.generating = false, s.stopping = false, s.rendering = false;
            break;
        case EventKind::JobFinished:
            if (e.text == "music") s.generating = false, s.stopping = false;
            if (e.text == "render sheet" || e.text == "export MIDI" || e.text == "export WAV" || e.text == "play")
                s.rendering = false;
            break;
        default:
            break;
    }
}

namespace {
struct ToolStatus {
    bool abcm2ps, rsvg, abc2midi, fluidsynth, soundfont;
};
const ToolStatus& tools() {
    static const ToolStatus t{!music::find_tool("abcm2ps").empty(), !find_program("rsvg-convert").empty(),
                              !music::find_tool("abc2midi").empty(), !music::find_tool("fluidsynth").empty(),
                              !music::default_soundfont().empty()};
    return t;
}
void missing(const char* what) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1, 0.6f, 0.3f, 1), "%s", what);
}
}  // namespace

void draw_music_panel(AppState& app) {
    MusicState& s = app.music;
    MusicSettings& ms = app.settings.music;
    ImGui::Text("Model: %s", s.model_desc.c_str());
    ImGui::BeginChild("##musicfields", ImVec2(330, 0), true);
    if (s.generating) ImGui::BeginDisabled();
    ImGui::PushItemWidth(150);
    ImGui::InputText("meter (M:)", &ms.meter);
    help_marker("Time signature, e.g. 6/8, 4/4, 3/4. Empty: left to the model (then K: is left too).");
    ImGui::InputText("key (K:)", &ms.key);
    help_marker("Key, e.g. D, G, Ador, Emin. K: closes the ABC header.");
    ImGui::InputText("unit (L:)", &ms.length);
    help_marker("Unit note length, e.g. 1/8.");
    ImGui::InputTextMultiline("control codes", &ms.control_codes, ImVec2(150, 40));
    help_marker(
        "Optional IrishMAN/TunesFormer control codes written after X:, e.g. S:2 (sections) and B:8 (bars), "
        "one per line. The shipped model was trained without them.");
    int seed = int(ms.seed);
    if (ImGui::InputInt("seed", &seed)) ms.seed = uint64_t(std::max(0, seed));
    ImGui::SliderInt("max bytes", &ms.max_bytes, 64, 4096);
    help_marker("Length limit; generation also stops at the end-of-tune byte (EOS 3).");
    ImGui::SliderFloat("temperature", &ms.temperature, 0.1f, 2.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("ChatRWKV music/run.py ABC preset: T = 1.0, top_k = 8, top_p = 0.8, no repetition penalties.");
    ImGui::SliderInt("top_k", &ms.top_k, 0, 64);
    help_marker("Keep only the k most likely bytes; 0 = off.");
    ImGui::SliderFloat("top_p", &ms.top_p, 0.0f, 1.0f, "%.2f", ImGuiSliderFlags_AlwaysClamp);
    help_marker("Nucleus cut-off before temperature.");
    ImGui::PopItemWidth();
    if (s.generating) ImGui::EndDisabled();
    if (studio_button(app, "Generate##music", !s.generating)) {
        MusicRequest r;
        r.model_path = ms.model;
        r.prompt.meter = ms.meter, r.prompt.key = ms.key, r.prompt.length = ms.length;
        r.prompt.control_codes = ms.control_codes;
        if (!r.prompt.control_codes.empty() && r.prompt.control_codes.back() != '\n') r.prompt.control_codes += '\n';
        r.tune.temperature = ms.temperature, r.tune.top_k = ms.top_k, r.tune.top_p = ms.top_p;
        r.tune.max_bytes = ms.max_bytes, r.tune.seed = ms.seed;
        s.abc.clear(), s.sheet.reset(), s.message.clear(), s.stop_reason.clear();
        s.generating = true;
        app.worker->music_generate(r);
    }
    ImGui::SameLine();
    if (studio_button(app, s.stopping ? "Stopping...##mstop" : "Stop##music", s.generating && !s.stopping)) {
        app.worker->stop();
        s.stopping = true;
    }
    ImGui::SameLine();
    if (studio_button(app, "Copy ABC", !s.abc.empty())) ImGui::SetClipboardText(s.abc.c_str());
    ImGui::Separator();
    const bool can_render = !s.abc.empty() && !s.generating && !s.rendering;
    if (studio_button(app, "Render sheet", can_render && tools().abcm2ps && tools().rsvg)) {
        s.rendering = true;
        app.worker->music_render(s.abc, MusicOutput::Sheet);
    }
    if (!tools().abcm2ps)
        missing("abcm2ps missing (apt install abcm2ps)");
    else if (!tools().rsvg)
        missing("rsvg-convert missing (apt install librsvg2-bin)");
    ImGui::SetNextItemWidth(200);
    ImGui::InputTextWithHint("##midi", "tune.mid", &s.midi_path);
    ImGui::SameLine();
    if (studio_button(app, "Export MIDI", can_render && tools().abc2midi && !s.midi_path.empty())) {
        s.rendering = true;
        app.worker->music_render(s.abc, MusicOutput::Midi, s.midi_path);
    }
    if (!tools().abc2midi) missing("abc2midi missing (apt install abcmidi)");
    ImGui::SetNextItemWidth(200);
    ImGui::InputTextWithHint("##wav", "tune.wav", &s.wav_path);
    ImGui::SameLine();
    const bool can_wav = tools().abc2midi && tools().fluidsynth && tools().soundfont;
    if (studio_button(app, "Export WAV", can_render && can_wav && !s.wav_path.empty())) {
        s.rendering = true;
        app.worker->music_render(s.abc, MusicOutput::Wav, s.wav_path);
    }
    if (studio_button(app, "Play", can_render && can_wav)) {
        s.rendering = true;
        app.worker->music_render(s.abc, MusicOutput::Play);
    }
    ImGui::SameLine();
    if (studio_button(app, "Stop playback", s.rendering)) app.worker->stop();
    if (!tools().fluidsynth)
        missing("fluidsynth missing (apt install fluidsynth)");
    else if (!tools().soundfont)
        missing("soundfont missing (apt install fluid-soundfont-gm)");
    if (!s.message.empty()) ImGui::TextWrapped("%s", s.message.c_str());
    ImGui::EndChild();

    ImGui::SameLine();
    ImGui::BeginChild("##musicright", ImVec2(0, 0));
    if (s.check_dirty && !s.generating) {
        s.check = music::check_abc(music::to_abc_file_text(s.abc));
        s.check_dirty = false;
    }
    if (s.generating) {
        ImGui::TextColored(ImVec4(0.7f, 0.7f, 0.7f, 1), "[ streaming%s ]", waiting_dots(ImGui::GetTime()));
    } else if (s.abc.empty()) {
        ImGui::TextDisabled("[ no tune ]");
    } else if (s.check.ok) {
        ImGui::TextColored(ImVec4(0.3f, 0.9f, 0.4f, 1), "[ valid ABC: %d bars ]", s.check.bars);
    } else {
        ImGui::TextColored(ImVec4(1, 0.4f, 0.3f, 1), "[ invalid ABC ]");
    }
    if (!s.generating && !s.abc.empty() && ImGui::IsItemHovered()) {
        std::string tip;
        for (const auto& e : s.check.errors) tip += "error: " + e + "\n";
        for (const auto& w : s.check.warnings) tip += "warning: " + w + "\n";
        ImGui::SetTooltip("%s", tip.empty() ? "no problems found" : tip.c_str());
    }
    ImGui::SameLine();
    ImGui::TextDisabled("%lld bytes, %.0f bytes/s %s", static_cast<long long>(s.bytes), s.bytes_per_s,
                        s.stop_reason.c_str());
    const float abc_h = s.sheet ? 200.f : ImGui::GetContentRegionAvail().y;
    ImGui::BeginChild("##abctext", ImVec2(0, abc_h), true);
    ImGui::TextUnformatted(s.abc.c_str());
    if (s.generating && ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 4) ImGui::SetScrollHereY(1.0f);
    ImGui::EndChild();
    if (s.sheet && s.sheet_tex.id) {
        ImGui::BeginChild("##sheet", ImVec2(0, 0), true, ImGuiWindowFlags_HorizontalScrollbar);
        const float w = ImGui::GetContentRegionAvail().x;
        const float scale = std::min(1.f, w / float(s.sheet_tex.width));
        ImGui::Image((ImTextureID)(intptr_t)s.sheet_tex.id,
                     ImVec2(s.sheet_tex.width * scale, s.sheet_tex.height * scale));
        ImGui::EndChild();
    }
    ImGui::EndChild();
}

}  // namespace aviary::studio
