// Audio panel: open or drop a sound, its waveform (min/max per pixel column), the log-mel spectrogram as a
// colour-mapped texture with a dB colour bar and a hover readout (time, Hz, dB), and tags as sorted bars with
// a threshold slider (style_anchors §4.4: ImPlot heatmap + colormap scale, ggwave's hover, ImHex's lazy
// texture). The spectrogram is the tagger's log-mel (spectrogram.h), computed and colour-mapped on the worker; the
// texture is made here, with the end of the tagger's clip marked.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

#include "gl_texture.h"
#include "plot_data.h"
#include "widgets.h"

namespace aviary::studio {

void audio_on_event(AppState& app, const Event& e) {
    AudioState& s = app.audio;
    switch (e.kind) {
        case EventKind::AudioReady:
            s.clip = e.audio, s.description = e.text, s.tags.clear();
            app.main_queue.post([&app, clip = e.audio] { texture_upload(app.audio.spec_tex, clip->spectrogram_rgba); });
            break;
        case EventKind::Tags:
            s.tags = e.tags, s.tagging = false;
            break;
        case EventKind::ModelLoaded:
            s.model_loading = false;
            break;
        case EventKind::Error:
            s.tagging = false, s.model_loading = false;
            break;
        case EventKind::JobFinished:
            if (e.text == "tag") s.tagging = false;
            if (e.text == "load tagging model") s.model_loading = false;
            break;
        default:
            break;
    }
}

namespace {
void waveform(const AudioClip& clip, ImVec2 size) {
    ImGui::BeginChild("##wave", size, true, ImGuiWindowFlags_NoScrollbar);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 p0 = ImGui::GetCursorScreenPos(), avail = ImGui::GetContentRegionAvail();
    const int cols = std::max(1, int(avail.x));
    std::vector<float> mins, maxs;
    min_max_columns(clip.samples.data(), clip.samples.size(), cols, mins, maxs);
    const float mid = p0.y + avail.y / 2, half = avail.y / 2 - 2;
    dl->AddLine(ImVec2(p0.x, mid), ImVec2(p0.x + avail.x, mid), IM_COL32(70, 70, 80, 255));
    for (int c = 0; c < cols; ++c)
        dl->AddLine(ImVec2(p0.x + c + 0.5f, mid - std::clamp(maxs[size_t(c)], -1.f, 1.f) * half),
                    ImVec2(p0.x + c + 0.5f, mid - std::clamp(mins[size_t(c)], -1.f, 1.f) * half + 1),
                    IM_COL32(110, 190, 255, 255));
    ImGui::InvisibleButton("##wavebtn", ImVec2(std::max(1.f, avail.x), std::max(1.f, avail.y)));
    if (ImGui::IsItemHovered()) {
        const double t = (ImGui::GetIO().MousePos.x - p0.x) / avail.x * double(clip.samples.size()) / clip.sample_rate;
        ImGui::SetTooltip("%.3f s", t);
    }
    ImGui::EndChild();
}

void spectrogram_view(const AudioState& s, ImVec2 size) {
    const AudioClip& clip = *s.clip;
    const Spectrogram& sp = clip.spectrogram;
    ImGui::BeginChild("##spec", size, true, ImGuiWindowFlags_NoScrollbar);
    const ImVec2 p0 = ImGui::GetCursorScreenPos(), avail = ImGui::GetContentRegionAvail();
    if (s.spec_tex.id) ImGui::Image((ImTextureID)(intptr_t)s.spec_tex.id, avail);
    const bool hovered = ImGui::IsItemHovered();
    if (sp.clip_frames > 0 && sp.clip_frames < sp.n_frames) {  // the end of the clip the tagger reads
        const float x = p0.x + avail.x * float(sp.clip_frames) / float(sp.n_frames);
        ImGui::GetWindowDrawList()->AddLine(ImVec2(x, p0.y), ImVec2(x, p0.y + avail.y), IM_COL32(255, 255, 255, 200),
                                            2.f);
    }
    if (hovered && sp.n_frames > 0) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int frame = std::clamp(int((m.x - p0.x) / avail.x * sp.n_frames), 0, sp.n_frames - 1);
        const int mel = std::clamp(sp.n_mels - 1 - int((m.y - p0.y) / avail.y * sp.n_mels), 0, sp.n_mels - 1);
        ImGui::SetTooltip("%.3f s\n%.0f Hz (mel band %d)\n%.1f dB", frame * sp.hop_seconds, sp.band_hz[size_t(mel)],
                          mel, double(sp.at(frame, mel)));
    }
    ImGui::EndChild();
}
}  // namespace

void draw_audio_panel(AppState& app) {
    AudioState& s = app.audio;
    ImGui::SetNextItemWidth(420);
    ImGui::InputTextWithHint("##audiopath", "sound file (WAV, FLAC, OGG)", &s.path_input);
    ImGui::SameLine();
    if (studio_button(app, "Open##audio", !s.path_input.empty())) {
        app.settings.last_audio = s.path_input;
        app.worker->open_audio(s.path_input);
    }
    ImGui::SameLine();
    if (studio_button(app, "Demo sound")) app.worker->demo_audio();
    ImGui::SameLine();
    ImGui::TextDisabled("(or drop a file on the window)");
    if (!s.clip) {
        ImGui::TextDisabled("No sound loaded.");
        return;
    }
    ImGui::TextUnformatted(s.description.c_str());
    const float tags_w = 320;
    ImGui::BeginChild("##audioleft", ImVec2(-tags_w, 0));
    const float w = ImGui::GetContentRegionAvail().x;
    ImGui::TextUnformatted("Waveform");
    waveform(*s.clip, ImVec2(w - 90, 120));
    const Spectrogram& sp = s.clip->spectrogram;
    if (sp.clip_frames > 0)
        ImGui::Text("Log-mel the tagger reads: %d bands x %d frames at %d Hz, hop %.1f ms; its clip: the first %.1f s",
                    sp.n_mels, sp.n_frames, sp.sample_rate, sp.hop_seconds * 1000, sp.clip_frames * sp.hop_seconds);
    else
        ImGui::Text("Log-mel (default AudioRWKV front end): %d bands x %d frames at %d Hz, hop %.1f ms", sp.n_mels,
                    sp.n_frames, sp.sample_rate, sp.hop_seconds * 1000);
    help_marker(
        "The audio module's front end, the features the tagger reads: the sound resampled to the model's rate, "
        "periodic Hann window, |FFT|^2, Slaney mel filters, 10*log10 (PANNs / AudioRWKV). Loading a tagging model "
        "redraws it with that model's front end and marks the end of the clip it reads (shorter sounds are "
        "zero-padded to it). Colours span 80 dB below the loudest bin. Hover for time, frequency and level.");
    const float spec_h = ImGui::GetContentRegionAvail().y - 4;
    spectrogram_view(s, ImVec2(w - 90, spec_h));
    ImGui::SameLine();
    colour_bar("##cbar", ImVec2(84, spec_h), s.clip->db_low, s.clip->db_high, "%.0f dB");
    ImGui::EndChild();

    ImGui::SameLine();
    ImGui::BeginChild("##tags", ImVec2(0, 0), true);
    ImGui::TextUnformatted("Tags");
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##amodel", "AudioRWKV model .safetensors", &app.settings.audio_model);
    if (studio_button(app, s.model_loading ? "Loading...##tagm" : "Load tagging model",
                      !s.model_loading && !app.settings.audio_model.empty())) {
        s.model_loading = true;
        app.worker->load_audio_model(app.settings.audio_model);
    }
    if (studio_button(app, "Tag", !s.tagging && !s.model_loading)) {
        s.tagging = true;
        app.worker->tag_audio();
    }
    ImGui::SetNextItemWidth(180);
    ImGui::SliderFloat("threshold", &s.threshold, 0.f, 1.f, "%.2f");
    help_marker("Tags scoring below the threshold are greyed out.");
    ImGui::TextWrapped("%s", app.worker->audio_status().c_str());
    for (const auto& [label, score] : s.tags) {
        const bool on = score >= s.threshold;
        if (!on) ImGui::PushStyleVar(ImGuiStyleVar_Alpha, 0.4f);
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.3f", score);
        ImGui::ProgressBar(score, ImVec2(120, 0), buf);
        ImGui::SameLine();
        ImGui::TextUnformatted(label.c_str());
        if (!on) ImGui::PopStyleVar();
    }
    ImGui::EndChild();
}

}  // namespace aviary::studio
