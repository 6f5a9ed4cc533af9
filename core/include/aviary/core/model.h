// The Eagle (v5.2) / Finch (v6) language model: official parameter names (state dicts round-trip),
// sequence mode (parallel over time; training and prefill) and RNN mode (one token), which agree.
// The LibTorch modules live in the .cpp (pimpl) so that this header stays cheap to include.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/cpu_engine_options.h"
#include "aviary/core/config.h"
#include "aviary/core/state.h"
#include "aviary/core/wkv.h"

namespace aviary {

// LoRA adapters on Linear layers (Model::add_lora): y = x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ with A (r, in) drawn from
// U(±1/√in) (Kaiming-uniform with a = √5, as nn.Linear and PEFT) and B (out, r) zeros, so training starts from the
// base model. Adapters are parameters named "<matrix>.lora_A.weight" / "<matrix>.lora_B.weight".
struct LoraOptions {
    int64_t rank = 8;
    double alpha = 16;  // the update is scaled by alpha / rank
    // Globs over matrix names, matched against the whole name ("blocks.3.att.key", "head") or the part after
    // "blocks.N." ("att.key", "ffn.value").
    std::vector<std::string> targets = {"att.receptance", "att.key", "att.value", "att.output", "att.gate", "ffn.*"};
    uint64_t seed = 0;  // of A's init
};

struct ModelOptions {
    std::string device = "cpu";  // "cpu" or "cuda"
    // Weight dtype for matrices: "fp32" or "bf16" (decay, state, norms: fp32), or "auto": the tensors' own (bf16 when
    // the matrices given are bf16, else fp32; Model::options() then reports the resolved one).
    std::string dtype = "fp32";
    WkvImpl wkv = WkvImpl::Auto;
    int64_t wkv_chunk = 32;
    // How the CPU decode engine built for this model runs (Decoder, prefill, shared_cpu_engine): the CLI's --dtype int8
    // and --threads land here. Defaults: the model's dtype, threads chosen by measurement, the best kernels.
    CpuEngineOptions cpu_engine;
};

// Checks a device name before any work is done: "cpu", or "cuda" with a CUDA LibTorch and a visible GPU; throws
// aviary::Error saying what is missing.
void check_device(const std::string& device);

class Model {
public:
    Model();
    ~Model();
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;

    // Loads .pth or safetensors; validates keys and shapes.
    static Model load(const std::string& path, const ModelOptions& options = {});
    // source: where the tensors came from (a file path); when given, errors about the tensors name it ("model
    // 'PATH': …").
    static Model from_tensors(const TensorList& tensors, const ModelOptions& options = {},
                              const std::string& source = "");

    const ModelConfig& config() const;
    const ModelOptions& options() const;

    // A zero state (or the checkpoint's time_state, transposed to [key][value], when present).
    State new_state(int64_t batch = 1) const;

    // Sequence mode. tokens (B, T) int64 -> logits fp32 (B, T, V) (all_logits) or (B, V) (last position).
    // The state is read and replaced by the state after the last token.
    at::Tensor forward(const at::Tensor& tokens, State& state, bool all_logits = true);
    // Same, from embeddings x (B, T, D) (before ln0; ln0 is applied in fp32 here).
    at::Tensor forward_embeddings(const at::Tensor& x, State& state, bool all_logits = true);
    // Same, with `hook(layer, x, after_block)` called on the residual stream (B, T, D) before (after_block = false)
    // and after (true) every block; it returns the stream to continue with (VisualRWKV reverses the image patch rows
    // around odd blocks with it). Before block 0 the stream is the raw input (ln0 not yet applied).
    using BlockHook = std::function<at::Tensor(int layer, const at::Tensor& x, bool after_block)>;
    at::Tensor forward_embeddings(const at::Tensor& x, State& state, bool all_logits, const BlockHook& hook);
    // RNN mode: one token per sequence, tokens (B) int64 -> logits (B, V) fp32.
    at::Tensor step(const at::Tensor& tokens, State& state);
    // Embedding rows (B, T, D) of the tokens, before ln0.
    at::Tensor embed(const at::Tensor& tokens) const;

    // Parameters with their official names (for saving, conversion and training). The tensors alias the
    // model's parameters.
    TensorList state_dict() const;

    // ---- fine-tuning (trainer.h uses these) ----
    // Adds a LoRA adapter to every matrix a target matches (an error when a target matches none or adapters
    // exist); returns how many matrices were adapted. Adapters appear in state_dict() (so training checkpoints
    // keep them) and are trained while the base weights stay frozen (train_language_model).
    int add_lora(const LoraOptions& options);
    bool has_lora() const;
    const LoraOptions& lora_options() const;
    // The adapter tensors only (aliasing the parameters), "<matrix>.lora_A.weight" / ".lora_B.weight".
    TensorList lora_state_dict() const;
    // W += (α/r)·B·A for every adapter (in W's dtype), then removes the adapters: the logits stay the same.
    void merge_lora();
    // The official keys only, with adapters merged into copies of their matrices (the model is not changed).
    // Equals state_dict() for a model without adapters. This is what a fine-tune exports.
    TensorList export_state_dict() const;
    // State tuning: gives every layer a trainable initial WKV state, the official `blocks.{l}.att.time_state`
    // (H, N, N) stored [value][key] (spec §3.3), zero-initialised as the official x060_state (§7.2); a no-op
    // when the model already has one. new_state() starts from it, with gradients in training mode.
    void add_time_state();

    // Training mode keeps autograd on (parameters require grad); inference mode (the default) runs every
    // forward without autograd.
    void train(bool on = true);
    bool is_training() const;

    // Data derived from the weights that lives and dies with this model, not with the process: the CPU engine built
    // for it (cpu_engine.h shared_cpu_engine keeps it here, so several models each keep theirs). Callers lock.
    std::shared_ptr<void>& derived_cache() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary
