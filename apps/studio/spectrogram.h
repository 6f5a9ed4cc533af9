// The Audio panel's log-mel spectrogram: exactly the features the tagger reads, from the audio module's front end
// (audio::model_log_mel: resampled to the model's rate, PANNs/AudioRWKV Slaney log-mel at its hop and mel bins),
// over the whole sound rather than one clip, with each band's centre frequency and the frames of the clip the
// tagger reads. The studio computes no FFT or mel filters of its own.
#pragma once
#include <cstddef>
#include <vector>

namespace aviary::audio {
struct AudioRwkvConfig;
}

namespace aviary::studio {

struct Spectrogram {
    int n_mels = 0, n_frames = 0;
    int sample_rate = 0;  // the rate the features are computed at (the model's)
    double hop_seconds = 0;
    int clip_frames = 0;          // frames [0, clip_frames) are the tagger's clip (0: no model loaded, no clip)
    std::vector<double> band_hz;  // (n_mels) centre frequency of each mel band
    std::vector<float> db;        // (n_frames, n_mels) row-major, audio::log_mel's dB
    float max_db = 0, min_db = 0;
    float at(int frame, int mel) const { return db[size_t(frame) * size_t(n_mels) + size_t(mel)]; }
};

// The model's log-mel of mono `samples` at `sample_rate`; `model` null: the default front end (AudioRwkvConfig{},
// the PANNs values the shipped model uses too) and no clip. Throws aviary::Error on a sound too short for a frame.
Spectrogram model_spectrogram(const std::vector<float>& samples, int sample_rate, const audio::AudioRwkvConfig* model);

}  // namespace aviary::studio
