// Sound input: libsndfile for reading files or bytes in memory (virtual I/O; one decoder for both, mono mix),
// libsamplerate for resampling, pad/trim to the clip.
// Follows ../shared/reference/multimodal_spec.md B.4 (32 kHz mono, zero-pad/cut) and STYLE.md error rules.
#include "aviary/audio/sound_file.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "aviary/core/error.h"

namespace aviary::audio {

namespace {

// A sound file's bytes in memory, read through libsndfile's virtual I/O (sf_open_virtual).
struct MemoryFile {
    const unsigned char* data;
    sf_count_t size, pos = 0;
};

sf_count_t memory_length(void* user) {
    return static_cast<MemoryFile*>(user)->size;
}
sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
    auto* m = static_cast<MemoryFile*>(user);
    const sf_count_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    const sf_count_t to = base + offset;
    if (to < 0 || to > m->size) return -1;
    m->pos = to;
    return m->pos;
}
sf_count_t memory_read(void* ptr, sf_count_t count, void* user) {
    auto* m = static_cast<MemoryFile*>(user);
    const sf_count_t n = std::max<sf_count_t>(0, std::min(count, m->size - m->pos));
    if (n > 0) std::memcpy(ptr, m->data + m->pos, size_t(n));
    m->pos += n;
    return n;
}
sf_count_t memory_write(const void*, sf_count_t, void*) {
    return 0;  // read only
}
sf_count_t memory_tell(void* user) {
    return static_cast<MemoryFile*>(user)->pos;
}

// The one decoder behind read_sound_mono and decode_sound_mono: `f` is open (or nullptr when libsndfile refused the
// bytes), `name` names the sound in every message.
std::vector<float> decode_open_sound(SNDFILE* f, const SF_INFO& sfi, const std::string& name, SoundInfo* info) {
    AVIARY_CHECK(f != nullptr, "'", name,
                 "' is not a sound file libsndfile can read (wav, flac, ogg, …): ", sf_strerror(nullptr));
    struct Closer {
        SNDFILE* f;
        ~Closer() { sf_close(f); }
    } closer{f};
    AVIARY_CHECK(sfi.frames > 0, "sound file '", name, "' holds no samples (0 frames)");
    AVIARY_CHECK(sfi.channels >= 1 && sfi.channels <= kMaxChannels, "sound file '", name, "' has ", sfi.channels,
                 " channels; expected 1 to ", kMaxChannels);
    AVIARY_CHECK(sfi.samplerate >= kMinSampleRate && sfi.samplerate <= kMaxSampleRate, "sound file '", name,
                 "' has a sample rate of ", sfi.samplerate, " Hz; expected ", kMinSampleRate, " to ", kMaxSampleRate);
    // Integer formats come back scaled to [-1, 1) (sf_readf_float's default normalisation).
    const int64_t frames = sfi.frames, channels = sfi.channels;
    std::vector<float> inter(static_cast<size_t>(frames * channels));
    const sf_count_t got = sf_readf_float(f, inter.data(), frames);
    AVIARY_CHECK(got > 0, "could not read samples from '", name, "': ", sf_strerror(f));
    std::vector<float> mono(static_cast<size_t>(got));
    for (int64_t t = 0; t < got; ++t) {
        double s = 0;
        for (int64_t c = 0; c < channels; ++c) s += inter[size_t(t * channels + c)];
        const float m = float(s / double(channels));
        AVIARY_CHECK(std::isfinite(m), "sound file '", name, "' has a non-finite sample (NaN or Inf) at frame ", t);
        mono[size_t(t)] = m;
    }
    if (info) *info = SoundInfo{sfi.samplerate, sfi.channels, int64_t(got)};
    return mono;
}

}  // namespace

std::vector<float> read_sound_mono(const std::string& path, SoundInfo* info) {
    std::error_code ec;
    AVIARY_CHECK(std::filesystem::exists(path, ec), "sound file '", path, "' does not exist");
    AVIARY_CHECK(!std::filesystem::is_directory(path, ec), "'", path, "' is a directory, expected a sound file");
    AVIARY_CHECK(std::filesystem::file_size(path, ec) > 0, "sound file '", path, "' is empty (0 bytes)");
    SF_INFO sfi{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &sfi);
    return decode_open_sound(f, sfi, path, info);
}

std::vector<float> decode_sound_mono(const void* data, size_t size, const std::string& name, SoundInfo* info) {
    AVIARY_CHECK(size > 0 && data != nullptr, "sound file '", name, "' is empty (0 bytes)");
    MemoryFile m{static_cast<const unsigned char*>(data), sf_count_t(size)};
    SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
    SF_INFO sfi{};
    SNDFILE* f = sf_open_virtual(&io, SFM_READ, &sfi, &m);
    return decode_open_sound(f, sfi, name, info);
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

std::vector<float> fit_clip(const std::vector<float>& mono, int from_rate, int rate, int64_t clip_samples) {
    std::vector<float> x = resample(mono, from_rate, rate);
    return clip_samples > 0 ? fit_length(std::move(x), clip_samples) : x;
}

std::vector<float> load_clip(const std::string& path, int rate, int64_t clip_samples, SoundInfo* info) {
    SoundInfo si;
    std::vector<float> mono = read_sound_mono(path, &si);  // before si is read (argument order is unspecified)
    if (info) *info = si;
    return fit_clip(mono, si.sample_rate, rate, clip_samples);
}

}  // namespace aviary::audio
