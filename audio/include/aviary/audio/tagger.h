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

// Top-k tags of one file (k <= 0: all classes), highest score first.
std::vector<Tag> tag_file(AudioRwkv& model, const std::string& path, int64_t top_k);

}  // namespace aviary::audio
