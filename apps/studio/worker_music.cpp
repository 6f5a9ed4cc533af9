// The worker's Music channel (studio_worker.h): the music model (the shipped one by default), tunes streamed from
// music::generate_tune, and exports through the music module's tools (sheet PNG, MIDI, WAV, playback).
#include "studio_worker.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/music/abc_tools.h"
#include "child_process.h"
#include "media.h"

namespace aviary::studio {

namespace fs = std::filesystem;

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

}  // namespace aviary::studio
