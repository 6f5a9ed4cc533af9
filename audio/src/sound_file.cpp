// Sound input: libsndfile for reading (mono mix), libsamplerate for resampling, pad/trim to the clip.
// Follows ../shared/reference/multimodal_spec.md B.4 (32 kHz mono, zero-pad/cut) and STYLE.md error rules.
#include "aviary/audio/sound_file.h"

#include <samplerate.h>
#include <sndfile.h>

#include <cmath>
#include <filesystem>

#include "aviary/core/error.h"

namespace aviary::audio {

std::vector<float> read_sound_mono(const std::string& path, SoundInfo* info) {
    std::error_code ec;
    AVIARY_CHECK(std::filesystem::exists(path, ec), "sound file '", path, "' does not exist");
    AVIARY_CHECK(!std::filesystem::is_directory(path, ec), "'", path, "' is a directory, expected a sound file");
    AVIARY_CHECK(std::filesystem::file_size(path, ec) > 0, "sound file '", path, "' is empty (0 bytes)");
    SF_INFO sfi{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &sfi);
    AVIARY_CHECK(f != nullptr, "'", path, "' is not a sound file libsndfile can read (wav, flac, ogg, …): ",
                 sf_strerror(nullptr));
    struct Closer {
        SNDFILE* f;
        ~Closer() { sf_close(f); }
    } closer{f};
    AVIARY_CHECK(sfi.frames > 0, "sound file '", path, "' holds no samples (0 frames)");
    AVIARY_CHECK(sfi.channels >= 1 && sfi.channels <= kMaxChannels, "sound file '", path, "' has ", sfi.channels,
                 " channels; expected 1 to ", kMaxChannels);
    AVIARY_CHECK(sfi.samplerate >= kMinSampleRate && sfi.samplerate <= kMaxSampleRate, "sound file '", path,
                 "' has a sample rate of ", sfi.samplerate, " Hz; expected ", kMinSampleRate, " to ", kMaxSampleRate);
    // Integer formats come back scaled to [-1, 1) (sf_readf_float's default normalisation).
    const int64_t frames = sfi.frames, channels = sfi.channels;
    std::vector<float> inter(static_cast<size_t>(frames * channels));
    const sf_count_t got = sf_readf_float(f, inter.data(), frames);
    AVIARY_CHECK(got > 0, "could not read samples from '", path, "': ", sf_strerror(f));
    std::vector<float> mono(static_cast<size_t>(got));
    for (int64_t t = 0; t < got; ++t) {
        double s = 0;
        for (int64_t c = 0; c < channels; ++c) s += inter[size_t(t * channels + c)];
        const float m = float(s / double(channels));
        AVIARY_CHECK(std::isfinite(m), "sound file '", path, "' has a non-finite sample (NaN or Inf) at frame ", t);
        mono[size_t(t)] = m;
    }
    if (info) *info = SoundInfo{sfi.samplerate, sfi.channels, int64_t(got)};
    return mono;
}

std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate) {
    AVIARY_CHECK(from_rate > 0 && to_rate > 0, "resample: rates must be positive, got ", from_rate, " -> ", to_rate);
    if (from_rate == to_rate || x.empty()) return x;
    const double ratio = double(to_rate) / double(from_rate);
    std::vector<float> out(static_cast<size_t>(std::ceil(double(x.size()) * ratio)) + 16);
    SRC_DATA d{};
    d.data_in = x.data();
    d.input_frames = long(x.size());
    d.data_out = out.data();
    d.output_frames = long(out.size());
    d.src_ratio = ratio;
    const int err = src_simple(&d, SRC_SINC_BEST_QUALITY, 1);
    AVIARY_CHECK(err == 0, "resampling ", from_rate, " -> ", to_rate, " Hz failed: ", src_strerror(err));
    out.resize(size_t(d.output_frames_gen));
    return out;
}

std::vector<float> fit_length(std::vector<float> x, int64_t n) {
    x.resize(size_t(n), 0.0f);
    return x;
}

std::vector<float> load_clip(const std::string& path, int rate, int64_t clip_samples, SoundInfo* info) {
    SoundInfo si;
    std::vector<float> mono = read_sound_mono(path, &si);  // before si is read (argument order is unspecified)
    std::vector<float> x = resample(mono, si.sample_rate, rate);
    if (info) *info = si;
    return clip_samples > 0 ? fit_length(std::move(x), clip_samples) : x;
}

}  // namespace aviary::audio
