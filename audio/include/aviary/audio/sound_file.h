// Sound input for the audio module: any file libsndfile reads (wav, flac, ogg, …; any channel count and rate),
// mixed to mono, resampled with libsamplerate (sinc, best quality) and padded/trimmed to the clip length.
// Follows ../shared/reference/multimodal_spec.md B.4 (PANNs/HTS-AT: 32 kHz mono, zero-pad/cut to the clip).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aviary::audio {

// Limits that make a file "not a sound we can use" rather than a resource problem.
constexpr int kMaxChannels = 64;
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 768000;

struct SoundInfo {
    int sample_rate = 0;  // of the file
    int channels = 0;     // of the file
    int64_t frames = 0;   // of the file (samples per channel)
};

// Reads a file and mixes all channels to mono (mean). Throws aviary::Error naming the file for: a missing file,
// an empty file, a file that is not sound, zero frames, more than kMaxChannels channels, a rate outside
// [kMinSampleRate, kMaxSampleRate], and NaN/Inf samples.
std::vector<float> read_sound_mono(const std::string& path, SoundInfo* info = nullptr);
// The same for the bytes of a sound file already in memory (libsndfile virtual I/O): the same decoding, checks and
// messages, with `name` standing for the file in them (e.g. "upload.wav" or "the sound").
std::vector<float> decode_sound_mono(const void* data, size_t size, const std::string& name, SoundInfo* info = nullptr);

// Band-limited resampling (libsamplerate SRC_SINC_BEST_QUALITY). Same rate: a copy.
std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate);

// Zero-pads or cuts to n samples (PANNs `pad_or_truncate`).
std::vector<float> fit_length(std::vector<float> x, int64_t n);

// Mono samples at `from_rate` -> resample to `rate` + fit_length(clip_samples); clip_samples <= 0 keeps the length.
std::vector<float> fit_clip(const std::vector<float>& mono, int from_rate, int rate, int64_t clip_samples);
// read_sound_mono + fit_clip.
std::vector<float> load_clip(const std::string& path, int rate, int64_t clip_samples, SoundInfo* info = nullptr);

}  // namespace aviary::audio
