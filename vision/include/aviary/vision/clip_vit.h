// CLIP vision transformer (OpenAI clip/model.py VisionTransformer = HF CLIPVisionTransformer, spec A.12): patch
// conv without bias, class token, position embedding, pre-LN (`pre_layrnorm`), pre-LN residual blocks with
// QuickGELU MLPs, non-causal attention. Loads HF names (`vision_model.*`, also inside full CLIPModel files and
// under VisualRWKV's `vit.` prefix) and OpenAI names (`visual.*`). The LibTorch modules are in the .cpp (pimpl).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "aviary/core/checkpoint.h"

namespace aviary::vision {

struct ClipVisionConfig {
    int64_t hidden = 1024;        // width
    int64_t intermediate = 4096;  // MLP width
    int64_t layers = 24;
    int64_t heads = 16;
    int64_t patch = 14;
    int64_t image_size = 336;
    std::string act = "quick_gelu";  // "quick_gelu" (CLIP) or "gelu"
    double ln_eps = 1e-5;
    int64_t grid() const { return image_size / patch; }
    int64_t tokens() const { return grid() * grid() + 1; }  // patches + CLS
};

class ClipVision {
public:
    ClipVision();
    ~ClipVision();
    ClipVision(ClipVision&&) noexcept;
    ClipVision& operator=(ClipVision&&) noexcept;

    // A model with fresh weights (HF CLIP init: N(0, 0.02) style; for training from scratch).
    static ClipVision create(const ClipVisionConfig& config, uint64_t seed);
    // Finds the vision tower among `tensors` (prefix "vision_model.", "vit.vision_model.", "visual.", or none) and
    // infers the config from the shapes. Heads are not in the weights: `heads` > 0 sets them, otherwise
    // hidden / 64 (every CLIP ViT: B/32, B/16, L/14 use head dim 64). Unknown vision keys are an error; other
    // prefixes (text_model, rwkv., proj.) and `position_ids` buffers are ignored.
    // dtype: "fp32" (every tensor widened to fp32), "bf16" (the linear layers' weights and biases and the patch
    // embedding in bf16; norms, class and position embeddings in fp32), or "auto" (bf16 when the file's linear
    // weights are bf16, else fp32). A bf16 tower keeps its residual stream, norms and softmax in fp32 and sends its
    // matrix products to oneDNN in bf16 (fp32 accumulation), on all threads (TorchThreadsScope).
    static ClipVision from_tensors(const TensorList& tensors, int64_t heads = 0, const std::string& dtype = "fp32");
    // read_checkpoint + from_tensors; a config.json beside the file (HF layout) supplies num_attention_heads and
    // hidden_act.
    static ClipVision load(const std::string& path, int64_t heads = 0, const std::string& dtype = "fp32");
    // True when `tensors` contain a CLIP vision tower under one of the prefixes above.
    static bool contains_vision_tower(const TensorList& tensors);

    const ClipVisionConfig& config() const;
    bool is_bf16() const;  // the linear layers hold bf16 weights

    // pixels (B, 3, S, S) float32, S = config().image_size -> HF last_hidden_state (B, 1 + P, D): CLS first, output
    // of the last encoder layer before post_layernorm.
    at::Tensor forward(const at::Tensor& pixels) const;
    // The rows VisualRWKV-6 consumes (spec A.2): the last hidden state reordered to P patches then CLS.
    at::Tensor features(const at::Tensor& pixels) const;

    // HF names ("vision_model.…"), aliasing the parameters.
    TensorList state_dict() const;
    void train(bool on);  // autograd on/off for the parameters

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Patches-then-CLS order from CLIP's CLS-first order, along dim 1.
at::Tensor cls_last(const at::Tensor& hidden);

}  // namespace aviary::vision
