// The Audio panel's spectrogram (spectrogram.h): audio::model_log_mel over the whole sound, laid out for display.
#include "spectrogram.h"

#include <algorithm>

#include "aviary/audio/front_end.h"
#include "aviary/audio/tagger.h"

namespace aviary::studio {

Spectrogram model_spectrogram(const std::vector<float>& samples, int sample_rate, const audio::AudioRwkvConfig* model) {
    const audio::AudioRwkvConfig config = model ? *model : audio::AudioRwkvConfig{};
    const audio::Features f = audio::model_log_mel(config, samples, sample_rate, 0);  // the whole sound
    const audio::LogMelOptions o = audio::log_mel_options(config);
    Spectrogram s;
    s.n_mels = int(f.bins);
    s.n_frames = int(f.frames);
    s.sample_rate = o.sample_rate;
    s.hop_seconds = double(o.hop) / o.sample_rate;
    s.clip_frames = model ? int(std::min<int64_t>(f.frames, config.frames())) : 0;
    const std::vector<double> points = audio::slaney_mel_points(o.n_mels, o.f_min, o.f_max);
    s.band_hz.assign(points.begin() + 1, points.end() - 1);  // band m peaks at point m + 1
    s.db = f.data;
    const auto [lo, hi] = std::minmax_element(s.db.begin(), s.db.end());
    s.min_db = *lo, s.max_db = *hi;
    return s;
}

}  // namespace aviary::studio
