// UI-side state (app_state.h): the main-thread queue, logging and banners, script hooks, event dispatch and
// what the app does at start (load the shipped models so every panel works on first launch).
#include "app_state.h"

#include <GLFW/glfw3.h>

#include <algorithm>
#include <filesystem>

#include "aviary/music/music.h"

namespace aviary::studio {

namespace fs = std::filesystem;

void MainQueue::post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    fns_.push_back(std::move(fn));
}
void MainQueue::run_all() {
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fns.swap(fns_);
    }
    for (auto& f : fns) f();
}
bool MainQueue::empty() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fns_.empty();
}

const char* panel_name(Panel p) {
    switch (p) {
        case Panel::Chat:
            return "chat";
        case Panel::Image:
            return "image";
        case Panel::Audio:
            return "audio";
        case Panel::Music:
            return "music";
        case Panel::Training:
            return "training";
        case Panel::Log:
            return "log";
        case Panel::Settings:
            return "settings";
    }
    return "?";
}

bool panel_from_name(const std::string& name, Panel& out) {
    for (Panel p :
         {Panel::Chat, Panel::Image, Panel::Audio, Panel::Music, Panel::Training, Panel::Log, Panel::Settings})
        if (name == panel_name(p)) {
            out = p;
            return true;
        }
    return false;
}

void AppState::add_log(Channel channel, const std::string& level, const std::string& text) {
    log.push_back({glfwGetTime() - start_time, channel_name(channel), level, text});
    while (log.size() > 5000) log.pop_front();
}

void AppState::add_error(Channel channel, const std::string& text) {
    add_log(channel, "error", text);
    banners.push_back({std::string(channel_name(channel)) + ": " + text, glfwGetTime()});
    if (banners.size() > 4) banners.erase(banners.begin());
}

bool AppState::consume_click(const char* label) {
    if (pending_click.empty()) return false;
    std::string visible = label;
    const size_t hash = visible.find("##");
    if (hash != std::string::npos) visible = visible.substr(0, hash);
    if (pending_click != label && pending_click != visible) return false;
    pending_click.clear();
    click_consumed = true;
    return true;
}

void AppState::register_fields() {
    text_fields = {
        {"chat.input", &chat.input},
        {"chat.session", &chat.session_path},
        {"image.path", &image.path_input},
        {"image.question", &image.question},
        {"image.model", &settings.vision.model},
        {"image.clip", &settings.vision.clip},
        {"image.proj", &settings.vision.proj},
        {"audio.path", &audio.path_input},
        {"audio.model", &settings.audio_model},
        {"music.meter", &settings.music.meter},
        {"music.key", &settings.music.key},
        {"music.length", &settings.music.length},
        {"music.control_codes", &settings.music.control_codes},
        {"music.midi_path", &music.midi_path},
        {"music.wav_path", &music.wav_path},
        {"training.log", &training.log_path},
        {"training.data", &settings.train.data},
        {"training.out", &settings.train.out},
        {"training.model", &settings.train.model},
        {"training.config", &training.config_path},
        {"settings.chat_model", &settings.chat.model},
        {"settings.chat_tokenizer", &settings.chat.tokenizer},
        {"settings.music_model", &settings.music.model},
        {"log.filter", &log_filter},
    };
    number_fields = {
        {"chat.max_tokens", [this](double v) { settings.chat.max_tokens = int(v); }},
        {"chat.temperature", [this](double v) { settings.chat.sampler.temperature = float(v); }},
        {"chat.top_p", [this](double v) { settings.chat.sampler.top_p = float(v); }},
        {"chat.seed", [this](double v) { settings.chat.sampler.seed = uint64_t(v); }},
        {"chat.chat_format", [this](double v) { settings.chat.chat_format = v != 0; }},
        {"music.seed", [this](double v) { settings.music.seed = uint64_t(v); }},
        {"music.max_bytes", [this](double v) { settings.music.max_bytes = int(v); }},
        {"music.temperature", [this](double v) { settings.music.temperature = float(v); }},
        {"image.zoom", [this](double v) { image.zoom = float(v), image.fit = false; }},
        {"image.fit", [this](double v) { image.fit = v != 0; }},
        {"audio.threshold", [this](double v) { audio.threshold = float(v); }},
        {"training.steps", [this](double v) { settings.train.steps = int64_t(v); }},
        {"training.log_y", [this](double v) { training.log_y = v != 0; }},
    };
    outputs = {
        {"chat.model", [this] { return chat.model_loaded ? chat.model_desc : std::string(); }},
        {"chat.answer",
         [this] {
             const auto& m = chat.branches[size_t(chat.active)].messages;
             return !m.empty() && m.back().role == "model" ? m.back().text : std::string();
         }},
        {"music.abc", [this] { return music.abc; }},
        {"image.description", [this] { return image.image ? image.description : std::string(); }},
        {"image.answer", [this] { return image.answer; }},
        {"audio.description", [this] { return audio.clip ? audio.description : std::string(); }},
        {"audio.tags",
         [this] {
             std::string t;
             for (const auto& [label, score] : audio.tags) t += (t.empty() ? "" : ", ") + label;
             return t;
         }},
    };
}

bool AppState::panels_idle() const {
    return !chat.generating && !music.generating && !music.rendering && !image.asking && !image.model_loading &&
           !audio.tagging && !audio.model_loading && !training.running && main_queue.empty();
}

void open_path_in_panel(AppState& app, const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const bool is_audio = ext == ".wav" || ext == ".flac" || ext == ".ogg" || ext == ".mp3" || ext == ".aiff";
    const bool is_model = ext == ".pth" || ext == ".safetensors";
    if (app.panel == Panel::Audio || (is_audio && app.panel != Panel::Image)) {
        app.panel = Panel::Audio;
        app.audio.path_input = path;
        app.settings.last_audio = path;
        app.worker->open_audio(path);
    } else if (is_model && (app.panel == Panel::Chat || app.panel == Panel::Settings)) {
        app.settings.chat.model = path;
        app.chat.model_desc = "loading...";
        app.worker->load_chat_model(path, app.settings.chat.tokenizer, app.settings.chat.vocab);
    } else if (ext == ".jsonl" && app.panel == Panel::Training) {
        app.training.log_path = path;
        app.training.reader = TrainLogReader(path);
        app.training.points.clear();
    } else {
        app.panel = Panel::Image;
        app.image.path_input = path;
        app.settings.last_image = path;
        app.worker->open_image(path);
    }
}

void handle_event(AppState& app, const Event& e) {
    switch (e.kind) {
        case EventKind::Log:
            app.add_log(e.channel, "info", e.text);
            break;
        case EventKind::Error:
            app.add_error(e.channel, e.text);
            break;
        case EventKind::JobStarted:
            app.add_log(e.channel, "debug", "started: " + e.text);
            break;
        default:
            break;
    }
    switch (e.channel) {
        case Channel::Chat:
            chat_on_event(app, e);
            break;
        case Channel::Music:
            music_on_event(app, e);
            break;
        case Channel::Image:
            image_on_event(app, e);
            break;
        case Channel::Audio:
            audio_on_event(app, e);
            break;
        default:
            break;
    }
}

void startup_commands(AppState& app) {
    std::string chat_model = app.settings.chat.model;
    try {
        if (chat_model.empty()) chat_model = music::default_model_path();
    } catch (const std::exception& e) {
        app.add_error(Channel::Chat, e.what());
    }
    if (!chat_model.empty())
        app.worker->load_chat_model(chat_model, app.settings.chat.tokenizer, app.settings.chat.vocab);
    std::string vision_model = app.settings.vision.model;
    if (vision_model.empty()) vision_model = app.worker->vision_default_model();
    if (!vision_model.empty()) {
        app.image.model_loading = true;
        app.worker->load_vision_model(vision_model, app.settings.vision.clip, app.settings.vision.proj);
    }
    std::string audio_model = app.settings.audio_model;
    if (audio_model.empty()) audio_model = app.worker->audio_default_model();
    if (!audio_model.empty()) {
        app.audio.model_loading = true;
        app.worker->load_audio_model(audio_model);
    }
    app.worker->demo_image();
    app.worker->demo_audio();
    // The training panel starts on the shipped model's training log.
    if (app.training.log_path.empty()) {
        try {
            const fs::path shipped =
                fs::path(music::default_model_path()).replace_extension("").string() + ".train_log.jsonl";
            if (fs::exists(shipped)) app.training.log_path = shipped.string();
        } catch (const std::exception&) {
        }
    }
    app.training.reader = TrainLogReader(app.training.log_path);
}

}  // namespace aviary::studio
