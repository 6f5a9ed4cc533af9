// The worker's Audio channel (studio_worker.h): the tagging model, sounds (a file through audio::read_sound_mono,
// or the demo chirp) with the tagger's spectrogram (media.h), and tags of the samples in memory (backends.h).
#include "studio_worker.h"

#include <algorithm>
#include <cstdio>

#include "aviary/audio/sound_file.h"
#include "aviary/core/error.h"
#include "backends.h"
#include "media.h"

namespace aviary::studio {

void StudioWorker::show_audio(std::vector<float> samples, int sample_rate, const std::string& text) {
    auto clip = make_audio_clip(std::move(samples), sample_rate, audio_->config());
    Event e;
    e.kind = EventKind::AudioReady, e.channel = Channel::Audio, e.text = text, e.audio = clip;
    clip_ = clip;
    clip_text_ = text;
    events_.push(std::move(e));
}

void StudioWorker::load_audio_model(const std::string& model_path) {
    post("load tagging model", Channel::Audio, [=] {
        emit(EventKind::Log, Channel::Audio, "loading tagging model '" + model_path + "'");
        emit(EventKind::ModelLoaded, Channel::Audio, audio_->load(model_path));
        if (clip_) show_audio(clip_->samples, clip_->sample_rate, clip_text_);  // the spectrogram of this model
    });
}

std::string StudioWorker::audio_default_model() const {
    return audio_->default_model();
}

void StudioWorker::open_audio(const std::string& path) {
    post("open sound", Channel::Audio, [=] {
        audio::SoundInfo info;
        std::vector<float> samples = audio::read_sound_mono(path, &info);
        char buf[96];
        std::snprintf(buf, sizeof buf, " (%.2f s, %d Hz, %d channel%s)", double(samples.size()) / info.sample_rate,
                      info.sample_rate, info.channels, info.channels == 1 ? "" : "s");
        show_audio(std::move(samples), info.sample_rate, path + buf);
    });
}

void StudioWorker::demo_audio() {
    post("demo sound", Channel::Audio, [=] {
        std::vector<float> samples;
        int sr = 0;
        demo_chirp(samples, sr);
        show_audio(std::move(samples), sr, "demo: chirp 200 Hz - 4 kHz, then 440 + 1320 Hz (4.00 s, 16000 Hz)");
    });
}

void StudioWorker::tag_audio() {
    post("tag", Channel::Audio, [=] {
        AVIARY_CHECK(clip_, "open a sound first");
        auto tags = audio_->tag(clip_->samples, clip_->sample_rate);  // the samples in memory: no file written
        std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        Event e;
        e.kind = EventKind::Tags, e.channel = Channel::Audio, e.tags = std::move(tags);
        events_.push(std::move(e));
    });
}

std::string StudioWorker::audio_status() const {
    return audio_->status();
}

}  // namespace aviary::studio
