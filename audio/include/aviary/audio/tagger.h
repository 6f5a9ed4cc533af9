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

// $AVIARY_AUDIO_MODEL, then <install>/share/aviary/models/, then <source>/assets/models/ (kDemoModelName).
constexpr const char* kDemoModelName = "audio-rwkv-tiny-synth.safetensors";
std::string default_model_path();

// Where the time of tagging went, in seconds of the steady clock (`aviary tag --stats`); tag_file adds to it, so one
// struct sums over several files.
struct TagTimings {
    double audio_s = 0;  // reading, decoding, mixing to mono, resampling, padding and the log-mel front end
    double model_s = 0;  // the AudioRWKV forward, the sigmoid and the ranking
};

// Top-k tags of one file (k <= 0: all classes), highest score first; `timings`, when given, gets this file's times
// added.
std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k, TagTimings* timings = nullptr);

}  // namespace aviary::audio
