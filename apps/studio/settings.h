// Persisted studio settings (model paths, sampling values, training config), as JSON in
// $XDG_CONFIG_HOME/aviary/studio.json (else ~/.config/aviary/studio.json), written atomically
// (aviary::write_file_atomic). Unknown keys are ignored and missing keys keep their defaults, so files
// from older versions still load; a file that is not JSON is an error naming it.
#pragma once
#include <cstdint>
#include <string>

#include "aviary/core/sampler.h"

namespace aviary::studio {

struct ChatSettings {
    std::string model;               // "" = the shipped byte model (music::default_model_path)
    std::string tokenizer = "byte";  // "byte" or "world"
    std::string vocab;               // World vocabulary ("" = WorldTokenizer::default_vocab_path)
    bool chat_format = false;        // wrap turns as "User: …\n\nAssistant:" (for World chat models)
    SamplerOptions sampler;          // ChatRWKV PIPELINE_ARGS defaults
    int max_tokens = 200;
};

struct MusicSettings {
    std::string model;  // "" = the shipped model
    std::string meter = "6/8", key = "D", length = "1/8", control_codes;
    float temperature = 1.0f, top_p = 0.8f;  // ChatRWKV music/run.py
    int top_k = 8;
    int max_bytes = 1024;
    uint64_t seed = 42;
};

struct VisionSettings {
    std::string model, clip, proj;  // VisualRWKV checkpoint ("" = the shipped demo model when there is one)
    int max_tokens = 64;
};

struct TrainSettings {
    std::string model = "init:2,64,5";  // init:L,D,VERSION or a checkpoint
    std::string data;                   // "" = data/music/validation.jsonl of the source tree when present
    std::string out;                    // "" = $XDG_CACHE_HOME/aviary/studio-run
    std::string tokenizer = "byte";
    int64_t steps = 60, ctx_len = 128, batch = 4, warmup = 5, save_every = 0;
    double lr = 2e-3, lr_final = 1e-4;
    int threads = 1;
};

struct Settings {
    ChatSettings chat;
    MusicSettings music;
    VisionSettings vision;
    TrainSettings train;
    std::string aviary_path;  // the `aviary` CLI used for training runs ("" = beside aviary-studio, then $PATH)
    int threads = 1;          // LibTorch threads of the worker (1 leaves a core for the UI)
    std::string last_image, last_audio;
    std::string audio_model;  // AudioRWKV tagging model ("" = the shipped demo model when there is one)
};

std::string default_settings_path();
std::string settings_to_json(const Settings& s);
Settings settings_from_json(const std::string& text, const std::string& source = "settings");
// A missing file gives the defaults.
Settings load_settings(const std::string& path);
void save_settings(const std::string& path, const Settings& s);  // creates the directory; atomic

}  // namespace aviary::studio

namespace aviary::studio {
// A training config file: the "train" object of the settings alone ({"model": …, "steps": …}).
std::string train_config_to_json(const TrainSettings& t);
TrainSettings train_config_from_json(const std::string& text, const std::string& source);
}  // namespace aviary::studio
