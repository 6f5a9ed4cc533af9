// The Decoder's CUDA-graph step (decoder.h, decode_cuda_graph.cpp): Model::step captured once in a CUDA graph on a
// side stream with a static token input, the state's fixed buffers updated in place and a static logits output; each
// token is one replay. Pattern of rwkv pip 0.8.31+ (forward_one_alt + torch.cuda.CUDAGraph). Private to core/src.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "aviary/core/model.h"
#include "aviary/core/state.h"

namespace aviary::detail {

// dst[i] ← src[i] for every tensor of the state, in place (layers and batch must match; errors name both).
void copy_state_into(State& dst, const State& src);

// The graph over `state` (the decoder's fixed buffers, kept by reference like the model). Only with a CUDA LibTorch
// (AVIARY_HAVE_CUDA_OP); elsewhere step() throws.
class CudaGraphStep {
public:
    CudaGraphStep(Model& model, State& state, int64_t batch);
    ~CudaGraphStep();
    CudaGraphStep(const CudaGraphStep&) = delete;
    CudaGraphStep& operator=(const CudaGraphStep&) = delete;

    // tokens (B) -> logits (B, V), a fresh tensor; `state` advanced in place. Host tokens are range-checked first;
    // the first call captures the graph.
    at::Tensor step(const at::Tensor& tokens);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary::detail
