// VisualRWKV training on LLaVA-format data with the shared Trainer (spec A.6–A.8): stage 1 trains only `proj`
// (CLIP and RWKV frozen; lr 1e-3 → 1e-5 cosine, image first), stage 2 trains RWKV + proj (CLIP and the embedding
// frozen; lr 2e-5 constant, image middle); loss only on assistant answers (+ their "\n\n"), per-sample mean then
// batch mean, L2Wrap. Frozen-CLIP features are cached on disk so that stages 1 and 2 never run CLIP twice.
// Stage 0 (not in VisualRWKV) trains everything, CLIP included, for models built from scratch (the demo).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aviary/core/trainer.h"
#include "aviary/vision/feature_cache.h"
#include "aviary/vision/image.h"
#include "aviary/vision/llava_data.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/visual_rwkv.h"

namespace aviary::vision {

struct VisionTrainConfig {
    int stage = 1;  // 0 (everything, from scratch), 1 (proj), 2 (RWKV + proj)
    TrainOptions train;
    ImagePosition position = ImagePosition::First;
    std::string image_folder;
    std::string out_dir;        // model.safetensors, train_log.jsonl, feature_cache.safetensors
    std::string feature_cache;  // default OUT/feature_cache.safetensors (stages 1 and 2)
    Metadata metadata;          // written into model.safetensors (e.g. tokenizer)
    // Checkpoints OUT/checkpoints/step-N (core/trainer.h: weights, optimizer, RNG; atomic), every save_every steps
    // (0: only when stopped and at the end); resume continues the newest exactly (same data order).
    int64_t save_every = 0;
    int keep_last = 2;
    bool resume = false;
    bool freeze_vit = false;  // stage 0 only: keep the ViT as it is (e.g. after pretrain_vit)
};
// The published defaults of a stage (spec A.7): lr, lr_final, warmup 0, ctx_len, image position, what trains.
VisionTrainConfig stage_defaults(int stage);

struct VisionTrainProgress {
    int64_t step = 0, total = 0;
    double loss = 0, lr = 0, elapsed_s = 0;
    std::string phase;  // "features" while the cache is built, then "train"
};
struct VisionTrainSummary {
    int64_t start_step = 0;      // > 0 when resumed
    std::vector<double> losses;  // this invocation's steps
    std::string final_model;
    int64_t trainable_params = 0;
    std::vector<std::string> trained;  // names of the trained tensors
    bool stopped = false;
};

// Per-patch labels for ViT pretraining (JSON: {"grid": g, "groups": [[class names…], …], "items": [{"image": …,
// "labels": [[one class id per group] × g² patches, row-major]}]}); class 0 of a group is usually "none".
struct PatchLabels {
    int64_t grid = 0;
    std::vector<std::vector<std::string>> groups;
    std::vector<std::string> images;
    std::vector<std::vector<int64_t>> labels;  // per image: g² × groups ids, patch-major
};
PatchLabels read_patch_labels(const std::string& path);  // errors name the file, item and what was expected
// ViT pretraining (the demo's stand-in for CLIP pretraining, whose weights cannot be shipped): the ViT's patch rows,
// layer-normalised, feed a linear head per label group (cross-entropy, mean over groups); only vit.* (and the head,
// which is not saved) train. Same loop, log, checkpoints and resume as train_vision; the model keeps its RWKV and
// projector unchanged. The metadata's "stage" is "vit".
VisionTrainSummary pretrain_vit(VisualRwkv& model, const PatchLabels& data, const VisionTrainConfig& config,
                                const std::function<bool(const VisionTrainProgress&)>& on_progress = {});

// One micro-batch loss (exposed for tests): samples [first, first + count) of `data` in the given order.
at::Tensor vision_batch_loss(VisualRwkv& model, const Tokenizer& tokenizer, const std::vector<LlavaSample>& data,
                             const std::vector<int64_t>& indices, const VisionTrainConfig& config,
                             const FeatureCache* cache, bool l2wrap);

VisionTrainSummary train_vision(VisualRwkv& model, const Tokenizer& tokenizer, const std::vector<LlavaSample>& data,
                                const VisionTrainConfig& config,
                                const std::function<bool(const VisionTrainProgress&)>& on_progress = {});

}  // namespace aviary::vision
