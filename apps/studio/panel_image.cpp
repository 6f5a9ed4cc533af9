// Image QA panel: open or drop an image, an image view with fit / 1:1 / wheel zoom / drag pan and a hover
// readout of pixel coordinates and RGBA (immvision, ImGuiTexInspect, mrpt CImGuiImageView; style_anchors
// §4.3), the preprocessed crop next to it, a question box, the streamed answer and what it cost (the timings of
// `aviary vqa --stats`). Textures are made on the UI thread through the main-thread queue.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

#include "gl_texture.h"
#include "widgets.h"

namespace aviary::studio {

void image_on_event(AppState& app, const Event& e) {
    ImageState& s = app.image;
    switch (e.kind) {
        case EventKind::ModelLoaded:
            s.model_loading = false;
            break;
        case EventKind::ImageReady:
            if (e.image != s.image) {  // a new picture (not just a new preview of the same one)
                s.description = e.text;
                s.fit = true, s.zoom = 1, s.pan_x = 0, s.pan_y = 0, s.answer.clear();
            }
            s.image = e.image, s.crop = e.image2;
            app.main_queue.post([&app, img = e.image, crop = e.image2] {
                texture_upload(app.image.tex, *img);
                if (crop) texture_upload(app.image.crop_tex, *crop);
            });
            break;
        case EventKind::Text:
            s.answer += e.text;
            break;
        case EventKind::Stats:  // text: format_vqa_stats of the answer just finished
            s.stats = e.text;
            break;
        case EventKind::Done:
        case EventKind::Error:
            s.asking = false, s.model_loading = false;
            break;
        case EventKind::JobFinished:
            if (e.text == "ask") s.asking = false;
            if (e.text == "load VQA model") s.model_loading = false;
            break;
        default:
            break;
    }
}

namespace {
// The image view: returns nothing; draws into a child of the remaining width and `height`.
void image_view(AppState& app, float height) {
    ImageState& s = app.image;
    ImGui::BeginChild("##imageview", ImVec2(-250, height), true,
                      ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    if (!s.image || s.tex.id == 0) {
        ImGui::TextDisabled("Open or drop an image (PNG, JPEG, BMP, TIFF, WebP).");
        ImGui::EndChild();
        return;
    }
    const float iw = float(s.image->width), ih = float(s.image->height);
    if (s.fit) {
        s.zoom = std::min(avail.x / iw, avail.y / ih);
        s.pan_x = (iw - avail.x / s.zoom) / 2, s.pan_y = (ih - avail.y / s.zoom) / 2;
    }
    ImGui::InvisibleButton("##canvas", ImVec2(std::max(1.f, avail.x), std::max(1.f, avail.y)));
    const bool hovered = ImGui::IsItemHovered();
    ImGuiIO& io = ImGui::GetIO();
    if (hovered && io.MouseWheel != 0) {  // zoom about the cursor
        const float mx = s.pan_x + (io.MousePos.x - p0.x) / s.zoom, my = s.pan_y + (io.MousePos.y - p0.y) / s.zoom;
        s.zoom = std::clamp(s.zoom * std::pow(1.2f, io.MouseWheel), 0.05f, 64.f);
        s.pan_x = mx - (io.MousePos.x - p0.x) / s.zoom, s.pan_y = my - (io.MousePos.y - p0.y) / s.zoom;
        s.fit = false;
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left)) {
        s.pan_x -= io.MouseDelta.x / s.zoom, s.pan_y -= io.MouseDelta.y / s.zoom;
        s.fit = false;
    }
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->PushClipRect(p0, ImVec2(p0.x + avail.x, p0.y + avail.y), true);
    dl->AddRectFilled(p0, ImVec2(p0.x + avail.x, p0.y + avail.y), IM_COL32(30, 30, 34, 255));
    const ImVec2 a(p0.x - s.pan_x * s.zoom, p0.y - s.pan_y * s.zoom);
    dl->AddImage((ImTextureID)(intptr_t)s.tex.id, a, ImVec2(a.x + iw * s.zoom, a.y + ih * s.zoom));
    dl->PopClipRect();
    if (hovered) {
        const int px = int(std::floor(s.pan_x + (io.MousePos.x - p0.x) / s.zoom));
        const int py = int(std::floor(s.pan_y + (io.MousePos.y - p0.y) / s.zoom));
        if (px >= 0 && py >= 0 && px < s.image->width && py < s.image->height) {
            const uint8_t* c = &s.image->rgba[(size_t(py) * s.image->width + px) * 4];
            ImGui::SetTooltip("x %d  y %d\nR %d  G %d  B %d  A %d", px, py, c[0], c[1], c[2], c[3]);
        }
    }
    ImGui::EndChild();
}
}  // namespace

void draw_image_panel(AppState& app) {
    ImageState& s = app.image;
    ImGui::SetNextItemWidth(420);
    ImGui::InputTextWithHint("##imgpath", "image file", &s.path_input);
    ImGui::SameLine();
    if (studio_button(app, "Open##image", !s.path_input.empty())) {
        app.settings.last_image = s.path_input;
        app.worker->open_image(s.path_input);
    }
    ImGui::SameLine();
    if (studio_button(app, "Test pattern")) app.worker->demo_image();
    ImGui::SameLine();
    ImGui::TextDisabled("(or drop a file on the window)");
    if (studio_button(app, "Fit")) s.fit = true;
    ImGui::SameLine();
    if (studio_button(app, "1:1")) {
        s.fit = false, s.zoom = 1, s.pan_x = 0, s.pan_y = 0;
    }
    ImGui::SameLine();
    ImGui::SetNextItemWidth(140);
    if (ImGui::SliderFloat("zoom", &s.zoom, 0.05f, 16.f, "%.2fx", ImGuiSliderFlags_Logarithmic)) s.fit = false;
    help_marker("Mouse wheel zooms about the cursor, drag pans, hovering shows the pixel's coordinates and RGBA.");
    ImGui::SameLine();
    ImGui::TextDisabled("%s", s.description.c_str());

    const float view_h = ImGui::GetContentRegionAvail().y - 150;
    image_view(app, view_h);
    ImGui::SameLine();
    ImGui::BeginChild("##crop", ImVec2(0, view_h), true);
    if (s.crop)
        ImGui::Text("Model input (%d x %d)", s.crop->width, s.crop->height);
    else
        ImGui::TextUnformatted("Model input");
    help_marker(
        "What the model sees: the shorter side resized to 224 (bicubic), then the centre 224x224 crop "
        "(CLIP preprocessing). Researchers debug preprocessing more than models.");
    if (s.crop_tex.id) ImGui::Image((ImTextureID)(intptr_t)s.crop_tex.id, ImVec2(224, 224));
    ImGui::Separator();
    ImGui::TextUnformatted("VQA model (VisualRWKV)");
    VisionSettings& vs = app.settings.vision;
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##vmodel", "model .pth/.safetensors", &vs.model);
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##vclip", "CLIP file (if separate)", &vs.clip);
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##vproj", "projector file (if separate)", &vs.proj);
    if (studio_button(app, s.model_loading ? "Loading...##vqa" : "Load VQA model",
                      !s.model_loading && !vs.model.empty())) {
        s.model_loading = true;
        app.worker->load_vision_model(vs.model, vs.clip, vs.proj);
    }
    ImGui::EndChild();

    ImGui::TextWrapped("%s", app.worker->vision_status().c_str());
    ImGui::SetNextItemWidth(120);
    ImGui::SliderInt("max tokens##vqa", &app.settings.vision.max_tokens, 1, 256);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(-200);
    ImGui::InputText("##question", &s.question);
    ImGui::SameLine();
    if (studio_button(app, "Ask", !s.asking && !s.model_loading && s.image != nullptr)) {
        s.answer.clear();
        s.stats.clear();
        s.asking = true;
        app.worker->ask_image(s.question, app.settings.vision.max_tokens);
    }
    ImGui::SameLine();
    if (studio_button(app, "Stop##ask", s.asking)) app.worker->stop();
    if (!s.stats.empty()) {
        ImGui::TextDisabled("%s", s.stats.c_str());
        help_marker(
            "Image: preprocessing, CLIP and projection; prefill: the prompt with the image rows; first token: "
            "from the start of image processing; peak: the process's peak resident memory (as `aviary vqa "
            "--stats`).");
    }
    ImGui::BeginChild("##answer", ImVec2(0, 0), true);
    ImGui::TextWrapped("%s%s", s.answer.c_str(), s.asking ? waiting_dots(ImGui::GetTime()) : "");
    ImGui::EndChild();
}

}  // namespace aviary::studio
