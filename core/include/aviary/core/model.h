// The Eagle (v5.2) / Finch (v6) language model: official parameter names (state dicts round-trip),
// sequence mode (parallel over time; training and prefill) and RNN mode (one token), which agree.
// The LibTorch modules live in the .cpp (pimpl) so that this header stays cheap to include.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"
#include "aviary/core/state.h"
#include "aviary/core/wkv.h"

namespace aviary {

struct ModelOptions {
    std::string device = "cpu";  // "cpu" or "cuda"
    std::string dtype = "fp32";  // weight dtype for matrices: "fp32" or "bf16" (decay, state, norms: fp32)
    WkvImpl wkv = WkvImpl::Auto;
    int64_t wkv_chunk = 32;
};

class Model {
public:
    Model();
    ~Model();
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;

    // Loads .pth or safetensors; validates keys and shapes.
    static Model load(const std::string& path, const ModelOptions& options = {});
    static Model from_tensors(const TensorList& tensors, const ModelOptions& options = {});

    const ModelConfig& config() const;
    const ModelOptions& options() const;

    // A zero state (or the checkpoint's time_state, transposed to [key][value], when present).
    State new_state(int64_t batch = 1) const;

    // Sequence mode. tokens (B, T) int64 -> logits fp32 (B, T, V) (all_logits) or (B, V) (last position).
    // The state is read and replaced by the state after the last token.
    at::Tensor forward(const at::Tensor& tokens, State& state, bool all_logits = true);
    // Same, from embeddings x (B, T, D) (before ln0; ln0 is applied in fp32 here).
    at::Tensor forward_embeddings(const at::Tensor& x, State& state, bool all_logits = true);
    // RNN mode: one token per sequence, tokens (B) int64 -> logits (B, V) fp32.
    at::Tensor step(const at::Tensor& tokens, State& state);
    // Embedding rows (B, T, D) of the tokens, before ln0.
    at::Tensor embed(const at::Tensor& tokens) const;

    // Parameters with their official names (for saving, conversion and training). The tensors alias the
    // model's parameters.
    TensorList state_dict() const;

    // Training mode keeps autograd on (parameters require grad); inference mode (the default) runs every
    // forward without autograd.
    void train(bool on = true);
    bool is_training() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary
