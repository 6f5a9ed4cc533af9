// The studio's one worker thread: it owns every model (chat, music, the vision/audio backends) and runs the
// commands the UI posts, one at a time (the queue in studio_worker.cpp; each channel's commands in
// worker_<channel>.cpp), sending events back (studio_events.h). The UI never waits on it: commands return at once,
// stop() is an atomic flag polled between tokens, and every exception a job throws becomes an Error event
// (nothing a job does can take the app down). STYLE.md; ImHex TaskManager, Tracy.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "aviary/core/generator.h"
#include "aviary/music/abc.h"
#include "aviary/music/music.h"
#include "studio_events.h"

namespace aviary::studio {

class ChatSession;
class VisionBackend;
class AudioBackend;

struct ChatRequest {
    std::string user_text;
    bool chat_format = false;  // "User: …\n\nAssistant:" with "\n\nUser:" as stop sequence
    GenerateOptions options;
};

struct MusicRequest {
    std::string model_path;  // "" = music::default_model_path()
    music::PromptOptions prompt;
    music::TuneOptions tune;
};

enum class MusicOutput { Sheet, Midi, Wav, Play };

class StudioWorker {
public:
    explicit StudioWorker(int threads = 1);
    ~StudioWorker();  // stops the running job, drops queued ones, joins
    StudioWorker(const StudioWorker&) = delete;
    StudioWorker& operator=(const StudioWorker&) = delete;

    void set_wake(std::function<void()> wake) { events_.set_wake(std::move(wake)); }

    // ---- commands (return at once) ----
    void load_chat_model(const std::string& path, const std::string& tokenizer, const std::string& vocab = "");
    void chat_send(const ChatRequest& request);
    // Restores the snapshot taken before the last answer and answers the same prompt again.
    void chat_regenerate(const GenerateOptions& options);
    void chat_branch();
    void chat_switch_branch(int index);
    void chat_reset();
    void chat_save_session(const std::string& path, const std::string& history_json);
    void chat_load_session(const std::string& path);

    void music_generate(const MusicRequest& request);
    // abc_text as generated; out_path: the file to write (Midi, Wav; "" = a temporary) — Sheet renders a PNG.
    void music_render(const std::string& abc_text, MusicOutput what, const std::string& out_path = "");

    // A VisualRWKV checkpoint (clip/proj: "" when the model file holds them); ModelLoaded on the Image channel.
    void load_vision_model(const std::string& model_path, const std::string& clip_path = "",
                           const std::string& proj_path = "");
    std::string vision_default_model() const;
    void open_image(const std::string& path);
    void demo_image();
    void ask_image(const std::string& question, int max_tokens);
    // ModelLoaded on the Audio channel, then AudioReady again for the sound shown (the spectrogram of this model).
    void load_audio_model(const std::string& model_path);
    std::string audio_default_model() const;
    void open_audio(const std::string& path);
    void demo_audio();
    void tag_audio();

    // Any job (tests, one-off actions); exceptions become Error events on `channel`.
    void post(const std::string& name, Channel channel, std::function<void()> job);

    void stop();        // asks the running and queued jobs to stop (between tokens)
    bool busy() const;  // a job is queued or running
    std::vector<Event> poll() { return events_.drain(); }
    EventQueue& events() { return events_; }

    // Read-only views for tests (call only while !busy()).
    ChatSession& chat_session_for_testing() { return *chat_; }
    std::string vision_status() const;
    std::string audio_status() const;

private:
    struct Job {
        std::string name;
        Channel channel;
        std::function<void()> run;
        uint64_t seq;
    };
    void loop();
    bool should_stop() const;
    void emit(EventKind kind, Channel channel, std::string text = "", double a = 0, double b = 0, int64_t n = 0);
    void run_chat(const std::string& prompt, const GenerateOptions& options);
    void ensure_music_model(const std::string& path);
    std::string scratch_file(const std::string& name) const;
    // Makes the clip (the loaded tagging model's spectrogram) current and sends it to the Audio panel.
    void show_audio(std::vector<float> samples, int sample_rate, const std::string& text);

    EventQueue events_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    bool quit_ = false;
    uint64_t next_seq_ = 1;
    std::atomic<uint64_t> stop_up_to_{0};  // jobs with seq <= this stop
    std::atomic<uint64_t> current_seq_{0};
    std::atomic<int> pending_{0};
    int threads_;

    // Owned by the worker thread only.
    std::unique_ptr<ChatSession> chat_;
    std::string chat_last_prompt_;
    std::vector<std::string> chat_last_stop_;
    std::unique_ptr<Model> music_model_;
    std::string music_model_path_;
    std::unique_ptr<VisionBackend> vision_;
    std::unique_ptr<AudioBackend> audio_;
    std::shared_ptr<const ImageRGBA> image_;
    std::shared_ptr<const AudioClip> clip_;
    std::string clip_text_;  // the description of clip_
    std::string scratch_dir_;

    std::thread thread_;  // last: starts after every member exists
};

}  // namespace aviary::studio
