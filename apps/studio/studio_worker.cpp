// The worker thread (studio_worker.h): a queue of jobs run in order, each wrapped so that any exception
// becomes an Error event; chat, music, image and audio commands are jobs over the models it owns.
#include "studio_worker.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "aviary/core/chat_format.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/threads.h"
#include "aviary/music/abc_tools.h"
#include "backends.h"
#include "chat_session.h"
#include "child_process.h"
#include "media.h"

namespace aviary::studio {

namespace fs = std::filesystem;

StudioWorker::StudioWorker(int threads)
    : threads_(threads),
      chat_(std::make_unique<ChatSession>()),
      vision_(make_vision_backend()),
      audio_(make_audio_backend()) {
    scratch_dir_ = (fs::temp_directory_path() / ("aviary-studio-" + std::to_string(::getpid()))).string();
    thread_ = std::thread([this] { loop(); });
}

StudioWorker::~StudioWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        quit_ = true;
        queue_.clear();
        stop_up_to_ = next_seq_;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::error_code ec;
    fs::remove_all(scratch_dir_, ec);
}

void StudioWorker::post(const std::string& name, Channel channel, std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back({name, channel, std::move(job), next_seq_++});
        ++pending_;
    }
    cv_.notify_one();
}

void StudioWorker::stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_up_to_ = next_seq_ - 1;
}

bool StudioWorker::busy() const {
    return pending_.load() > 0;
}

bool StudioWorker::should_stop() const {
    return current_seq_.load() <= stop_up_to_.load();
}

void StudioWorker::emit(EventKind kind, Channel channel, std::string text, double a, double b, int64_t n) {
    Event e;
    e.kind = kind, e.channel = channel, e.text = std::move(text), e.a = a, e.b = b, e.n = n;
    events_.push(std::move(e));
}

void StudioWorker::loop() {
    try {
        set_thread_count(threads_);
    } catch (...) {
    }
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
            if (quit_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        current_seq_ = job.seq;
        emit(EventKind::JobStarted, job.channel, job.name);
        try {
            job.run();
        } catch (const std::exception& e) {
            emit(EventKind::Error, job.channel, job.name + ": " + e.what());
        } catch (...) {
            emit(EventKind::Error, job.channel, job.name + ": unknown error");
        }
        // JobFinished comes before pending_ drops, so a UI that sees !busy() has every event of the job.
        emit(EventKind::JobFinished, job.channel, job.name);
        --pending_;
    }
}

// ---------------------------------------------------------------- chat
void StudioWorker::load_chat_model(const std::string& path, const std::string& tokenizer, const std::string& vocab) {
    post("load chat model", Channel::Chat, [=] {
        emit(EventKind::Log, Channel::Chat, "loading '" + path + "' (" + tokenizer + " tokenizer)");
        chat_->load(path, tokenizer, vocab);
        emit(EventKind::ModelLoaded, Channel::Chat, chat_->describe(), double(chat_->state_bytes()));
        emit(EventKind::Log, Channel::Chat, "chat model: " + chat_->describe());
    });
}

void StudioWorker::run_chat(const std::string& prompt, const GenerateOptions& options) {
    auto last_stats = std::chrono::steady_clock::now();
    const GenerateResult r = chat_->generate(
        prompt, options,
        [&](const std::string& piece, const ChatStreamStats& st) {
            emit(EventKind::Text, Channel::Chat, piece);
            const auto now = std::chrono::steady_clock::now();
            if (now - last_stats > std::chrono::milliseconds(200)) {
                last_stats = now;
                emit(EventKind::Stats, Channel::Chat, "", st.tokens_per_s, double(chat_->state_bytes()), st.tokens);
            }
        },
        [this] { return should_stop(); });
    const double tps = r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0;
    emit(EventKind::Stats, Channel::Chat, "", tps, double(chat_->state_bytes()), int64_t(r.tokens.size()));
    emit(EventKind::Done, Channel::Chat, r.stop_reason, r.prefill_seconds, r.decode_seconds, int64_t(r.tokens.size()));
}

void StudioWorker::chat_send(const ChatRequest& request) {
    post("chat", Channel::Chat, [=] {
        AVIARY_CHECK(chat_->loaded(), "no chat model is loaded (Settings: chat model)");
        std::string prompt = request.user_text;
        GenerateOptions o = request.options;
        if (request.chat_format) {
            prompt = chat_turn("User", request.user_text) + kChatAssistantPrefix;  // World chat format
            o.stop.push_back("\n\nUser:");
        }
        chat_->take_snapshot();
        chat_last_prompt_ = prompt;
        chat_last_stop_ = o.stop;
        run_chat(prompt, o);
    });
}

void StudioWorker::chat_regenerate(const GenerateOptions& options) {
    post("regenerate", Channel::Chat, [=] {
        AVIARY_CHECK(chat_->has_snapshot() && !chat_last_prompt_.empty(), "nothing to regenerate yet");
        chat_->restore_snapshot();
        emit(EventKind::Regenerate, Channel::Chat);
        GenerateOptions o = options;
        o.stop = chat_last_stop_;
        run_chat(chat_last_prompt_, o);
    });
}

void StudioWorker::chat_branch() {
    post("branch", Channel::Chat, [=] {
        const int i = chat_->branch();
        emit(EventKind::Branched, Channel::Chat, "", 0, 0, i);
    });
}

void StudioWorker::chat_switch_branch(int index) {
    post("switch branch", Channel::Chat, [=] {
        chat_->switch_branch(index);
        emit(EventKind::BranchSwitched, Channel::Chat, "", 0, 0, index);
    });
}

void StudioWorker::chat_reset() {
    post("reset chat", Channel::Chat, [=] {
        chat_->reset();
        chat_last_prompt_.clear();
        emit(EventKind::Stats, Channel::Chat, "", 0, double(chat_->state_bytes()), 0);
    });
}

void StudioWorker::chat_save_session(const std::string& path, const std::string& history_json) {
    post("save session", Channel::Chat, [=] {
        chat_->save_session(path, history_json);
        emit(EventKind::SessionSaved, Channel::Chat, path);
        emit(EventKind::Log, Channel::Chat, "session saved to '" + path + "'");
    });
}

void StudioWorker::chat_load_session(const std::string& path) {
    post("load session", Channel::Chat, [=] {
        const std::string history = chat_->load_session(path);
        emit(EventKind::SessionLoaded, Channel::Chat, history);
        emit(EventKind::Log, Channel::Chat, "session loaded from '" + path + "'");
    });
}

// ---------------------------------------------------------------- music
void StudioWorker::ensure_music_model(const std::string& path_in) {
    const std::string path = path_in.empty() ? music::default_model_path() : path_in;
    if (music_model_ && music_model_path_ == path) return;
    emit(EventKind::Log, Channel::Music, "loading music model '" + path + "'");
    music_model_ = std::make_unique<Model>(Model::load(path));
    music_model_path_ = path;
    const ModelConfig& c = music_model_->config();
    emit(EventKind::ModelLoaded, Channel::Music,
         fs::path(path).filename().string() + " (v" + c.version_string() + ", " + std::to_string(c.n_layer) +
             " layers, D " + std::to_string(c.n_embd) + ")");
}

void StudioWorker::music_generate(const MusicRequest& request) {
    post("music", Channel::Music, [=] {
        ensure_music_model(request.model_path);
        const std::string prompt = music::build_prompt(request.prompt);
        emit(EventKind::Text, Channel::Music, prompt.substr(1));  // the header, without chr(2)
        const auto t0 = std::chrono::steady_clock::now();
        int64_t n = 0;
        const music::TuneResult r = music::generate_tune(
            *music_model_, prompt, request.tune,
            [&](const std::string& piece) {
                ++n;
                emit(EventKind::Text, Channel::Music, piece);
                if (n % 32 == 0) {
                    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    emit(EventKind::Stats, Channel::Music, "", dt > 0 ? double(n) / dt : 0, 0, n);
                }
            },
            [this] { return should_stop(); });
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        emit(EventKind::Stats, Channel::Music, "", dt > 0 ? double(n) / dt : 0, 0, n);
        emit(EventKind::Done, Channel::Music, r.stop_reason, 0, dt, n);
    });
}

std::string StudioWorker::scratch_file(const std::string& name) const {
    fs::create_directories(scratch_dir_);
    return (fs::path(scratch_dir_) / name).string();
}

void StudioWorker::music_render(const std::string& abc_text, MusicOutput what, const std::string& out_path) {
    const char* names[] = {"render sheet", "export MIDI", "export WAV", "play"};
    post(names[int(what)], Channel::Music, [=] {
        AVIARY_CHECK(!abc_text.empty(), "no tune yet: generate one first");
        const std::string abc = scratch_file("tune.abc");
        {
            std::ofstream f(abc, std::ios::binary);
            f << music::to_abc_file_text(abc_text);
            AVIARY_CHECK(f.good(), "cannot write '", abc, "'");
        }
        if (what == MusicOutput::Sheet) {
            const std::string svg = scratch_file("tune.svg"), png = scratch_file("tune.png");
            music::export_svg(abc, svg);  // names the Debian package when abcm2ps is missing
            AVIARY_CHECK(!find_program("rsvg-convert").empty(),
                         "rsvg-convert not found: install the Debian package librsvg2-bin to render sheet music");
            fs::remove(png);
            const int code =
                run_program({"rsvg-convert", "-b", "white", "-z", "1.5", "-o", png, svg}, scratch_file("rsvg.log"));
            AVIARY_CHECK(code == 0 && fs::exists(png), "rsvg-convert failed (exit ", code, ") on '", svg, "'");
            Event e;
            e.kind = EventKind::SheetReady, e.channel = Channel::Music, e.text = png;
            e.image = std::make_shared<ImageRGBA>(load_image_rgba(png));
            events_.push(std::move(e));
            return;
        }
        if (what == MusicOutput::Midi) {
            const std::string out = out_path.empty() ? scratch_file("tune.mid") : out_path;
            music::export_midi(abc, out);
            emit(EventKind::Message, Channel::Music, "MIDI written to '" + out + "'");
            return;
        }
        const std::string midi = scratch_file("tune.mid");
        music::export_midi(abc, midi);
        const std::string wav = (what == MusicOutput::Wav && !out_path.empty()) ? out_path : scratch_file("tune.wav");
        music::export_wav(midi, wav);
        if (what == MusicOutput::Wav) {
            emit(EventKind::Message, Channel::Music, "WAV written to '" + wav + "'");
            return;
        }
        std::string player;
        for (const char* p : {"pw-play", "paplay", "aplay"})
            if (player.empty() && !find_program(p).empty()) player = p;
        AVIARY_CHECK(!player.empty(),
                     "no audio player found (pw-play, paplay or aplay: Debian pipewire-bin, "
                     "pulseaudio-utils or alsa-utils); the WAV is at '",
                     wav, "'");
        emit(EventKind::Message, Channel::Music, "playing with " + player);
        ChildProcess proc;
        proc.start({player, wav}, scratch_file("player.log"));
        while (proc.running()) {
            if (should_stop()) {
                proc.terminate();
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        emit(EventKind::Message, Channel::Music, "playback ended");
    });
}

// ---------------------------------------------------------------- image
void StudioWorker::load_vision_model(const std::string& model_path, const std::string& clip_path,
                                     const std::string& proj_path) {
    post("load VQA model", Channel::Image, [=] {
        emit(EventKind::Log, Channel::Image, "loading VQA model '" + model_path + "'");
        const std::string desc = vision_->load(model_path, clip_path, proj_path);
        emit(EventKind::ModelLoaded, Channel::Image, desc);
        if (image_) {  // the preview now shows this model's input size
            Event e;
            e.kind = EventKind::ImageReady, e.channel = Channel::Image, e.text = "(re-preprocessed for the model)";
            e.image = image_;
            e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*image_));
            events_.push(std::move(e));
        }
    });
}

std::string StudioWorker::vision_default_model() const {
    return vision_->default_model();
}

void StudioWorker::open_image(const std::string& path) {
    post("open image", Channel::Image, [=] {
        auto img = std::make_shared<ImageRGBA>(vision_->decode(path));
        Event e;
        e.kind = EventKind::ImageReady, e.channel = Channel::Image;
        e.text = path + " (" + std::to_string(img->width) + "x" + std::to_string(img->height) + ")";
        e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*img));
        e.image = img;
        image_ = img;
        events_.push(std::move(e));
    });
}

void StudioWorker::demo_image() {
    post("test pattern", Channel::Image, [=] {
        auto img = std::make_shared<ImageRGBA>(demo_test_pattern());
        Event e;
        e.kind = EventKind::ImageReady, e.channel = Channel::Image;
        e.text = "test pattern (640x480)";
        e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*img));
        e.image = img;
        image_ = img;
        events_.push(std::move(e));
    });
}

void StudioWorker::ask_image(const std::string& question, int max_tokens) {
    post("ask", Channel::Image, [=] {
        AVIARY_CHECK(image_, "open an image first");
        AVIARY_CHECK(!question.empty(), "the question is empty");
        const VqaStats st = vision_->answer(
            *image_, question, max_tokens,
            [&](const std::string& piece) { emit(EventKind::Text, Channel::Image, piece); },
            [this] { return should_stop(); });
        emit(EventKind::Stats, Channel::Image, format_vqa_stats(st), st.ttft_s, st.peak_rss_mb, st.tokens);
        emit(EventKind::Done, Channel::Image, should_stop() ? "stopped" : "done", 0, 0, st.tokens);
    });
}

// ---------------------------------------------------------------- audio
void StudioWorker::load_audio_model(const std::string& model_path) {
    post("load tagging model", Channel::Audio, [=] {
        emit(EventKind::Log, Channel::Audio, "loading tagging model '" + model_path + "'");
        emit(EventKind::ModelLoaded, Channel::Audio, audio_->load(model_path));
    });
}

std::string StudioWorker::audio_default_model() const {
    return audio_->default_model();
}

void StudioWorker::open_audio(const std::string& path) {
    post("open sound", Channel::Audio, [=] {
        std::vector<float> samples;
        int sr = 0;
        load_sound_mono(path, samples, sr);
        auto clip = make_audio_clip(std::move(samples), sr);
        Event e;
        e.kind = EventKind::AudioReady, e.channel = Channel::Audio;
        char buf[64];
        std::snprintf(buf, sizeof buf, " (%.2f s, %d Hz)", double(clip->samples.size()) / sr, sr);
        e.text = path + buf;
        e.audio = clip;
        clip_ = clip;
        clip_path_ = path;
        events_.push(std::move(e));
    });
}

void StudioWorker::demo_audio() {
    post("demo sound", Channel::Audio, [=] {
        std::vector<float> samples;
        int sr = 0;
        demo_chirp(samples, sr);
        auto clip = make_audio_clip(std::move(samples), sr);
        Event e;
        e.kind = EventKind::AudioReady, e.channel = Channel::Audio;
        e.text = "demo: chirp 200 Hz - 4 kHz, then 440 + 1320 Hz (4.00 s, 16000 Hz)";
        e.audio = clip;
        clip_ = clip;
        clip_path_.clear();
        events_.push(std::move(e));
    });
}

void StudioWorker::tag_audio() {
    post("tag", Channel::Audio, [=] {
        AVIARY_CHECK(clip_, "open a sound first");
        auto tags = audio_->tag(clip_path_, clip_->samples, clip_->sample_rate);
        std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        Event e;
        e.kind = EventKind::Tags, e.channel = Channel::Audio, e.tags = std::move(tags);
        events_.push(std::move(e));
    });
}

std::string StudioWorker::vision_status() const {
    return vision_->status();
}
std::string StudioWorker::audio_status() const {
    return audio_->status();
}

}  // namespace aviary::studio
