// Tagging files with an AudioRWKV model, and where the shipped demo model lives (core find_shipped_model:
// environment, install share dir, source tree).
#include "aviary/audio/tagger.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "aviary/audio/front_end.h"
#include "aviary/audio/sound_file.h"
#include "aviary/core/error.h"
#include "aviary/core/shipped_model.h"

namespace aviary::audio {

std::string default_model_path() {
    return find_shipped_model(kDemoModelName, "AVIARY_AUDIO_MODEL");
}

std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k, TagTimings* timings) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point t0 = Clock::now();
    const auto& c = model.config();
    LogMelOptions lm;
    lm.sample_rate = c.sample_rate;
    lm.hop = c.hop;
    lm.n_mels = int(c.n_mels);
    Features f = log_mel(load_clip(path, c.sample_rate, c.clip_samples()), lm);
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

}  // namespace aviary::audio
