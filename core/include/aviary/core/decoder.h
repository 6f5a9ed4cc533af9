// Batched one-token decoding (the RNN step of Model, spec §2.7) for generation and benchmarks. On CUDA the step
// is captured once in a CUDA graph and replayed per token: eager LibTorch would pay ~40–60 kernel launches per
// layer from the host (docs/reference perf_anchors §2), the graph pays one launch per token. Follows rwkv pip
// 0.8.31+ (torch.cuda.CUDAGraph decoding). On the CPU the step runs on the CPU decode engine (cpu_engine.h,
// shared_cpu_engine: fp32/bf16/int8 kernels, the model's ModelOptions::cpu_engine); a model the engine does not take
// (LoRA adapters) and use_graph = false use plain Model::step.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "aviary/core/model.h"
#include "aviary/core/state.h"

namespace aviary {

class Decoder {
public:
    // Decodes `batch` sequences together with `model` (inference mode; kept by reference, must outlive this).
    // use_graph = false forces plain Model::step (the reference the graph and the CPU engine are tested against).
    Decoder(Model& model, int64_t batch, bool use_graph = true);
    ~Decoder();
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;

    // tokens (B) int64 on any device -> logits (B, V) fp32 on the model's device (a fresh tensor each call).
    // The first call on CUDA captures the graph (a few hundred ms). Host tokens are range-checked before the
    // replay; device tokens (e.g. an argmax of the last logits) are trusted.
    at::Tensor step(const at::Tensor& tokens);

    // The state after the last step. With a graph its tensors are the graph's fixed buffers: read or clone them,
    // and change them only through load_state.
    const State& state() const;
    // Copies `state` (same layers and batch, any device) into the decoder's state.
    void load_state(const State& state);

    bool uses_graph() const;
    bool uses_engine() const;  // the CPU decode engine runs the steps
    int64_t batch() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A prompt (B, T) in sequence mode -> logits of each sequence's last token (B, V) fp32, `state` updated. On the CPU
// (a model the engine takes: inference mode, no LoRA) this is the CPU engine's prefill (shared_cpu_engine: GEMMs
// over blocks plus fused loops, no LibTorch op overhead; no autograd history); elsewhere Model::forward(tokens, state,
// all_logits = false).
at::Tensor prefill(Model& model, const at::Tensor& tokens, State& state);

}  // namespace aviary
