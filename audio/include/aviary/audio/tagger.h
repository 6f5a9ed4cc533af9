// Tagging sounds with an AudioRWKV model: a file, a sound file's bytes in memory, or mono samples -> resample to the
// model's rate, pad/trim to its clip, log-mel (model_log_mel: the one front end of tagging, training and the studio's
// spectrogram), forward, sigmoid, top-k. default_model_path finds the shipped demo model like
// music::default_model_path.
#pragma once
#include <string>
#include <vector>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/front_end.h"

namespace aviary::audio {

struct Tag {
    int64_t index = 0;
    std::string mid, name;
    double score = 0;
};

// The shipped demo model (core find_shipped_model): $AVIARY_AUDIO_MODEL, then <install>/share/aviary/models/, then
// <source>/assets/models/ (kDemoModelName).
constexpr const char* kDemoModelName = "audio-rwkv-tiny-synth.safetensors";
std::string default_model_path();

// Where the time of tagging went, in seconds of the steady clock (`aviary tag --stats`, with the keys of the CLI
// contract shared with `vqa --stats`); tag_file adds to it, so one struct sums over several files.
struct TagTimings {
    double audio_s = 0;    // reading, decoding, mixing to mono, resampling, padding and the log-mel front end
    double prefill_s = 0;  // the AudioRWKV forward over the patch tokens (sequence mode), the sigmoid and the ranking
    double ttft_s = 0;     // the first file's audio_s + prefill_s: the time to the first result
    int64_t input_tokens = 0;  // patch tokens the model read (a tagger generates none)
    int files = 0;
};

// The model's front end: log_mel options from its config (rate, hop, mel bins; window and band edges the PANNs
// values of LogMelOptions).
LogMelOptions log_mel_options(const AudioRwkvConfig& config);
// The log-mel the model reads for mono samples at `sample_rate`: resampled to config.sample_rate, padded or cut to
// clip_samples (<= 0: the whole sound; the tagger passes config.clip_samples()), log_mel(log_mel_options(config)).
Features model_log_mel(const AudioRwkvConfig& config, const std::vector<float>& mono, int sample_rate,
                       int64_t clip_samples);

// Top-k tags of one sound (k <= 0: all classes), highest score first; `timings`, when given, gets this sound's times
// added. The three differ only in where the mono samples come from; a file and its bytes give the same tags.
std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k, TagTimings* timings = nullptr);
// The bytes of a sound file in memory (decode_sound_mono; `name` stands for the file in messages).
std::vector<Tag> tag_sound_bytes(AudioRwkv& model, const void* data, size_t size, const std::string& name,
                                 int64_t top_k, TagTimings* timings = nullptr);
// Mono samples at `sample_rate` (throws aviary::Error on no samples, a rate outside the sound_file.h limits, or a
// non-finite sample).
std::vector<Tag> tag_samples(AudioRwkv& model, const std::vector<float>& mono, int sample_rate, int64_t top_k,
                             TagTimings* timings = nullptr);

}  // namespace aviary::audio
