// Tagging sounds (a file, a sound file's bytes, mono samples) with an AudioRWKV model through one path, the model's
// log-mel front end, and where the shipped demo model lives (core find_shipped_model: environment, install share
// dir, source tree).
#include "aviary/audio/tagger.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "aviary/audio/front_end.h"
#include "aviary/audio/sound_file.h"
#include "aviary/core/error.h"
#include "aviary/core/shipped_model.h"

namespace aviary::audio {

std::string default_model_path() {
    return find_shipped_model(kDemoModelName, "AVIARY_AUDIO_MODEL");
}

LogMelOptions log_mel_options(const AudioRwkvConfig& config) {
    LogMelOptions lm;
    lm.sample_rate = config.sample_rate;
    lm.hop = config.hop;
    lm.n_mels = int(config.n_mels);
    return lm;
}

Features model_log_mel(const AudioRwkvConfig& config, const std::vector<float>& mono, int sample_rate,
                       int64_t clip_samples) {
    return log_mel(fit_clip(mono, sample_rate, config.sample_rate, clip_samples), log_mel_options(config));
}

namespace {

using Clock = std::chrono::steady_clock;

// The one tagging path after decoding: the model's log-mel of one clip, forward, sigmoid, ranking; times from t0
// (when the sound began to be read).
std::vector<Tag> tag_mono(AudioRwkv& model, const std::vector<float>& mono, int sample_rate, int64_t top_k,
                          TagTimings* timings, Clock::time_point t0) {
    const auto& c = model.config();
    Features f = model_log_mel(c, mono, sample_rate, c.clip_samples());
    torch::NoGradGuard no_grad;
    model.set_training(false);
    at::Tensor x = torch::from_blob(f.data.data(), {1, f.frames, f.bins}, torch::kFloat).clone();
    const Clock::time_point t_audio = Clock::now();
    at::Tensor p = torch::sigmoid(model.forward(x))[0].to(torch::kDouble).contiguous();
    std::vector<int64_t> order(static_cast<size_t>(c.n_classes));
    std::iota(order.begin(), order.end(), 0);
    const double* s = p.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    if (top_k > 0 && top_k < c.n_classes) order.resize(size_t(top_k));
    std::vector<Tag> out;
    for (int64_t i : order) out.push_back({i, model.labels()[size_t(i)].mid, model.labels()[size_t(i)].name, s[i]});
    if (timings) {
        const double audio_s = std::chrono::duration<double>(t_audio - t0).count();
        const double prefill_s = std::chrono::duration<double>(Clock::now() - t_audio).count();
        timings->audio_s += audio_s;
        timings->prefill_s += prefill_s;
        if (timings->files++ == 0) timings->ttft_s = audio_s + prefill_s;
        timings->input_tokens += c.grid_t() * c.grid_f();
    }
    return out;
}

}  // namespace

std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k, TagTimings* timings) {
    const Clock::time_point t0 = Clock::now();
    SoundInfo info;
    const std::vector<float> mono = read_sound_mono(path, &info);
    return tag_mono(model, mono, info.sample_rate, top_k, timings, t0);
}

std::vector<Tag> tag_sound_bytes(AudioRwkv& model, const void* data, size_t size, const std::string& name,
                                 int64_t top_k, TagTimings* timings) {
    const Clock::time_point t0 = Clock::now();
    SoundInfo info;
    const std::vector<float> mono = decode_sound_mono(data, size, name, &info);
    return tag_mono(model, mono, info.sample_rate, top_k, timings, t0);
}

std::vector<Tag> tag_samples(AudioRwkv& model, const std::vector<float>& mono, int sample_rate, int64_t top_k,
                             TagTimings* timings) {
    const Clock::time_point t0 = Clock::now();
    AVIARY_CHECK(!mono.empty(), "tag_samples: the sound holds no samples");
    AVIARY_CHECK(sample_rate >= kMinSampleRate && sample_rate <= kMaxSampleRate, "tag_samples: a sample rate of ",
                 sample_rate, " Hz; expected ", kMinSampleRate, " to ", kMaxSampleRate);
    for (size_t t = 0; t < mono.size(); ++t)
        AVIARY_CHECK(std::isfinite(mono[t]), "tag_samples: a non-finite sample (NaN or Inf) at frame ", t);
    return tag_mono(model, mono, sample_rate, top_k, timings, t0);
}

}  // namespace aviary::audio
