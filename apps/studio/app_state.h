// What the UI thread keeps between frames: one struct per panel, the log, error banners, the main-thread
// queue for GL work, and the hooks the scripted mode drives (named text fields, numeric fields and button
// clicks). Only the UI thread touches it (ImGui FAQ: one context, one thread).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aviary/music/abc.h"
#include "chat_history.h"
#include "child_process.h"
#include "settings.h"
#include "studio_events.h"
#include "studio_worker.h"
#include "train_log.h"

namespace aviary::studio {

// GL work posted from anywhere, run by the UI thread at the start of a frame (Tracy's RunQueue; textures are
// created and deleted only there, style_anchors §4.3).
class MainQueue {
public:
    void post(std::function<void()> fn);
    void run_all();
    bool empty() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::function<void()>> fns_;
};

struct Texture {
    unsigned id = 0;
    int width = 0, height = 0;
};

enum class Panel { Chat, Image, Audio, Music, Training, Log, Settings };
const char* panel_name(Panel p);
bool panel_from_name(const std::string& name, Panel& out);

struct ChatBranch {
    std::string name;
    std::vector<ChatMessage> messages;
};
struct ChatState {
    std::string input = "X:1\nT:Studio tune\nM:6/8\nL:1/8\nK:D\n";
    std::vector<ChatBranch> branches{{"main", {}}};
    int active = 0;
    bool generating = false, stopping = false, model_loaded = false, auto_scroll = true;
    std::string model_desc = "loading...", loaded_desc, stop_reason, session_path;
    double tokens_per_s = 0, state_bytes = 0;
    int64_t tokens = 0;
};

struct ImageState {
    std::string path_input, description, question = "What is in this picture?", answer, status;
    std::string stats;  // the last answer's timings (format_vqa_stats), "" while asking
    std::shared_ptr<const ImageRGBA> image, crop;
    Texture tex, crop_tex;
    bool fit = true, asking = false, model_loading = false;
    float zoom = 1;
    float pan_x = 0, pan_y = 0;  // image pixel at the view's top-left
};

struct AudioState {
    std::string path_input, description, status;
    std::shared_ptr<const AudioClip> clip;
    Texture spec_tex;
    std::vector<std::pair<std::string, float>> tags;
    float threshold = 0.3f;
    bool tagging = false, model_loading = false;
};

struct MusicState {
    std::string abc, message, model_desc = "shipped ABC model (loads on first use)", midi_path, wav_path;
    bool generating = false, stopping = false, rendering = false;
    music::AbcCheck check;
    bool check_dirty = false;
    std::shared_ptr<const ImageRGBA> sheet;
    Texture sheet_tex;
    double bytes_per_s = 0;
    int64_t bytes = 0;
    std::string stop_reason;
};

struct TrainingState {
    ChildProcess proc;
    bool running = false, stopping = false, log_y = false;
    std::string log_path, run_log_path, status = "idle", config_path;
    TrainLogReader reader;
    std::vector<TrainLogPoint> points;
    double last_poll = 0;
    int64_t total_steps = 0;
};

struct LogLine {
    double time;
    std::string channel, level, text;
};

struct Banner {
    std::string text;
    double time;
};

struct AppState {
    Settings settings;
    std::string settings_path;
    StudioWorker* worker = nullptr;
    MainQueue main_queue;
    Panel panel = Panel::Chat;
    double start_time = 0;

    ChatState chat;
    ImageState image;
    AudioState audio;
    MusicState music;
    TrainingState training;
    std::deque<LogLine> log;
    std::vector<Banner> banners;
    bool log_auto_scroll = true;
    std::string log_filter;

    // scripted mode
    bool scripted = false;
    std::string pending_click;  // a button label to press this frame
    bool click_consumed = false;
    std::map<std::string, std::string*> text_fields;
    std::map<std::string, std::function<void(double)>> number_fields;
    std::map<std::string, std::function<std::string()>> outputs;  // what the panels show (expect-output)
    std::vector<std::string> dropped;                             // paths dropped on the window (GLFW callback)

    // measurements
    double frame_ms_max_busy = 0, frame_ms_sum_busy = 0;
    int64_t frames = 0, frames_busy = 0;

    void add_log(Channel channel, const std::string& level, const std::string& text);
    void add_error(Channel channel, const std::string& text);
    // Script hooks: a button labelled `label` is pressed when the user clicks it or the script asked for it.
    bool consume_click(const char* label);
    void register_fields();
    bool panels_idle() const;  // no generation / render / training the UI is still waiting for
};

// Panels: draw (UI thread, ImGui) and event handling (UI thread, no ImGui calls).
void draw_chat_panel(AppState& app);
void draw_image_panel(AppState& app);
void draw_audio_panel(AppState& app);
void draw_music_panel(AppState& app);
void draw_training_panel(AppState& app);
void draw_log_panel(AppState& app);
void draw_settings_panel(AppState& app);
void chat_on_event(AppState& app, const Event& e);
void image_on_event(AppState& app, const Event& e);
void audio_on_event(AppState& app, const Event& e);
void music_on_event(AppState& app, const Event& e);
void training_poll(AppState& app, double now);  // follows the run's JSONL log and its process
void training_start(AppState& app);
void open_path_in_panel(AppState& app, const std::string& path);
void handle_event(AppState& app, const Event& e);
// Loads the models of the settings at start (the shipped byte model for chat when none is chosen).
void startup_commands(AppState& app);

}  // namespace aviary::studio
