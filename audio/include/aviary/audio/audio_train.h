// AudioRWKV training (../shared/reference/multimodal_spec.md B.2): BCE on the 527 sigmoid outputs, class-balanced
// sampling (each round visits every class once in random order, one random clip of that class), mixup of the
// normalised log-mel with the reversed batch (λ ~ Beta(α, α) per sample, inputs only, HTS-AT style), SpecAugment
// (zeroed time and mel stripes). Optimizer, schedule and clipping come from core's Trainer; checkpoints are core's
// (trainer.h: written atomically, newest two plus the best kept) and resume exactly (every random draw is derived from
// seed + step).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/audioset.h"
#include "aviary/audio/metrics.h"
#include "aviary/core/trainer.h"  // TrainPrecision

namespace aviary::audio {

struct AudioTrainOptions {
    int64_t steps = 1000, batch = 32;
    double lr = 1e-3, lr_final = 1e-4, weight_decay = 0.05, grad_clip = 1.0;
    int64_t warmup = 50;
    double mixup_alpha = 0.5;                             // 0: off
    double mixup_prob = 0.5;                              // share of batches mixed
    int64_t spec_time_width = 64, spec_time_stripes = 2;  // widths drawn in [0, width)
    int64_t spec_freq_width = 8, spec_freq_stripes = 2;
    bool balanced = true;
    uint64_t seed = 42;
    int64_t save_every = 0;                           // steps; 0: only at the end or when stopped
    int64_t eval_every = 0;                           // steps; 0: only at the end (when an eval set is given)
    TrainPrecision precision = TrainPrecision::Auto;  // forward arithmetic (core trainer.h)
};

struct AudioTrainProgress {
    int64_t step = 0, total = 0;
    double loss = 0, lr = 0, grad_norm = 0, elapsed_s = 0;
    double eval_map = -1;  // set on evaluation steps
};

struct AudioTrainResult {
    int64_t start_step = 0, end_step = 0;
    bool stopped = false;
    std::string final_model;  // OUT/model.safetensors (when finished)
    TaggingMetrics eval;      // last evaluation (classes_scored = 0 when none)
};

// Trains on `train` (features already loaded), evaluating on `eval` (may be empty). OUT gets checkpoints/,
// train_log.jsonl and model.safetensors. With resume, continues from the newest complete checkpoint.
AudioTrainResult train_audio_model(AudioRwkv& model, const ClipFeatures& train, const ClipFeatures& eval,
                                   const AudioTrainOptions& options, const std::string& out_dir, bool resume,
                                   const std::function<bool(const AudioTrainProgress&)>& on_progress = {});

// Scores (n × n_classes, sigmoid) of the model on loaded features, in batches, eval mode.
std::vector<double> predict_scores(AudioRwkv& model, const ClipFeatures& data, int64_t batch = 32,
                                   const std::function<bool(int64_t, int64_t)>& on_progress = {});
TaggingMetrics evaluate_tagging(AudioRwkv& model, const ClipFeatures& data, int64_t batch = 32,
                                const std::function<bool(int64_t, int64_t)>& on_progress = {});

}  // namespace aviary::audio
