// AudioRWKV (../shared/reference/multimodal_spec.md B.2): log-mel (B, frames, mels) -> BatchNorm over mel bins ->
// patch embedding Conv2d(1→D, p×p, stride p) + LayerNorm over the (time × mel) image -> learned position
// embedding -> n_layer VRWKV6 blocks (Q-Shift, Finch data-dependent lerps and decay, bidirectional WKV, ln_x,
// SiLU gate; channel mix with Q-Shift) -> LayerNorm -> mean over patches -> Linear(D→527) -> sigmoid.
// Tiny: D 192, 12 layers, 3 heads; Small: D 384, 12 layers, 6 heads (head size 64).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"

namespace aviary::audio {

struct AudioRwkvConfig {
    int64_t n_embd = 192, n_layer = 12, n_head = 3;
    int64_t patch = 16;          // square patches over (time frames × mel bins)
    int64_t n_mels = 64;         // LogMelOptions::n_mels
    int sample_rate = 32000;     // LogMelOptions::sample_rate
    int hop = 320;               // LogMelOptions::hop
    double clip_seconds = 10.0;  // input is padded/cut to this
    int64_t n_classes = 527;
    int64_t ffn_mult = 4;                    // channel-mix hidden = ffn_mult · D
    int64_t lora_mix = 32, lora_decay = 64;  // Finch ddlerp / decay LoRA ranks

    static AudioRwkvConfig tiny(double clip_seconds = 10.0);
    static AudioRwkvConfig small(double clip_seconds = 10.0);
    int64_t clip_samples() const;
    int64_t frames() const;  // log-mel frames of one clip: 1 + clip_samples / hop
    int64_t grid_t() const;  // time patches (trailing frames dropped, as the conv does)
    int64_t grid_f() const;  // mel patches
    std::string to_json() const;
    static AudioRwkvConfig from_json(const std::string& text);
    void validate() const;  // throws aviary::Error naming the bad value
};

struct ClassLabel {
    std::string mid, name;
};

class AudioRwkv {
public:
    // Fresh weights (seeded).
    AudioRwkv(const AudioRwkvConfig& config, const std::vector<ClassLabel>& labels, uint64_t seed = 42);
    ~AudioRwkv();
    AudioRwkv(AudioRwkv&&) noexcept;
    AudioRwkv& operator=(AudioRwkv&&) noexcept;

    // safetensors with metadata "aviary.audio.config" (JSON) and "aviary.audio.labels" (JSON [[mid, name], …]).
    static AudioRwkv load(const std::string& path);
    void save(const std::string& path, const std::string& dtype = "fp32") const;  // atomic
    // The metadata save() writes (config, labels, format); with state_dict() it makes a model file (the training
    // checkpoints' model.safetensors, audio_train.cpp).
    Metadata file_metadata() const;

    const AudioRwkvConfig& config() const;
    const std::vector<ClassLabel>& labels() const;

    // logmel (B, frames, mels) fp32 -> BatchNorm over mel bins (train: batch statistics; eval: running ones).
    at::Tensor normalise(const at::Tensor& logmel);
    // normalised (B, frames, mels) -> logits (B, n_classes) (sigmoid gives the tag probabilities).
    at::Tensor forward_normalised(const at::Tensor& x);
    at::Tensor forward(const at::Tensor& logmel) { return forward_normalised(normalise(logmel)); }

    void set_training(bool on);
    // Parameters and buffers under their checkpoint names, aliasing the model's tensors.
    TensorList named_parameters() const;
    TensorList named_buffers() const;
    TensorList state_dict() const;                    // parameters then buffers
    void load_state_dict(const TensorList& tensors);  // names and shapes must match
    int64_t parameter_count() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary::audio
