// Tagging sound files with an AudioRWKV model: read, mono, resample to the model's rate, pad/trim, log-mel,
// forward, sigmoid, top-k. default_model_path finds the shipped demo model like music::default_model_path.
#pragma once
#include <string>
#include <vector>

#include "aviary/audio/audio_rwkv.h"

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

// Top-k tags of one file (k <= 0: all classes), highest score first; `timings`, when given, gets this file's times
// added.
std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k, TagTimings* timings = nullptr);

}  // namespace aviary::audio
