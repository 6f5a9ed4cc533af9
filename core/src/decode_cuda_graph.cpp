// The Decoder's CUDA-graph step (decode_cuda_graph.h): the RNN step captured in a CUDA graph (at::cuda::CUDAGraph) on
// a side stream from the pool, with a static token input, static state tensors that the captured step updates in
// place (copy_ at its end) and a static logits output; each token is one graph replay. Without CUDA LibTorch
// (AVIARY_HAVE_CUDA_OP unset) there is no graph. Pattern of rwkv pip 0.8.31+ (forward_one_alt + torch.cuda.CUDAGraph).
#include "decode_cuda_graph.h"

#include <ATen/ATen.h>

#include "aviary/core/error.h"

#ifdef AVIARY_HAVE_CUDA_OP
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace aviary::detail {

void copy_state_into(State& dst, const State& src) {
    AVIARY_CHECK(dst.n_layer() == src.n_layer(), "state has ", src.n_layer(), " layers, the decoder's has ",
                 dst.n_layer());
    AVIARY_CHECK(dst.batch() == src.batch(), "state batch ", src.batch(), " does not match the decoder's batch ",
                 dst.batch());
    for (int l = 0; l < dst.n_layer(); ++l) {
        dst.att_shift[l].copy_(src.att_shift[l]);
        dst.wkv[l].copy_(src.wkv[l]);
        dst.ffn_shift[l].copy_(src.ffn_shift[l]);
    }
}

struct CudaGraphStep::Impl {
    Model& model;
    State& state;  // the fixed buffers the graph reads and updates
    int64_t batch;
#ifdef AVIARY_HAVE_CUDA_OP
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    at::Tensor tokens_static;  // (B) int64 on the device
    at::Tensor logits_static;  // (B, V) fp32, written by each replay

    // One step from tokens_static on the current stream; the new state is copied into the fixed buffers.
    at::Tensor step_in_place() {
        State work = state;  // shallow: the step replaces work's tensors, never writes into state's
        at::Tensor logits = model.step(tokens_static, work);  // (B, V)
        copy_state_into(state, work);
        return logits;
    }

    void capture() {
        const auto device = state.wkv[0].device();
        c10::cuda::CUDAGuard device_guard(device);
        tokens_static = at::zeros({batch}, at::TensorOptions().dtype(at::kLong).device(device));
        const State saved = state.clone();
        at::cuda::CUDAStream side = at::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
        at::cuda::getCurrentCUDAStream().synchronize();
        {
            c10::cuda::CUDAStreamGuard stream_guard(side);
            // Warm-up on the capture stream: cuBLAS handles and workspaces, allocator blocks, lazy inits.
            for (int i = 0; i < 2; ++i) step_in_place();
            side.synchronize();
            copy_state_into(state, saved);
            graph = std::make_unique<at::cuda::CUDAGraph>();
            graph->capture_begin();
            logits_static = step_in_place();
            graph->capture_end();
        }
        side.synchronize();
    }
#endif
};

CudaGraphStep::CudaGraphStep(Model& model, State& state, int64_t batch) : impl_(new Impl{model, state, batch}) {}

CudaGraphStep::~CudaGraphStep() = default;

at::Tensor CudaGraphStep::step(const at::Tensor& tokens) {
#ifdef AVIARY_HAVE_CUDA_OP
    if (!tokens.is_cuda()) {
        const at::Tensor ids = tokens.to(at::kLong);
        const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>(),
                      vocab = impl_->model.config().vocab_size;
        AVIARY_CHECK(lo >= 0 && hi < vocab, "token id ", (lo < 0 ? lo : hi), " is out of range (vocabulary size ",
                     vocab, ")");
    }
    if (!impl_->graph) impl_->capture();
    impl_->tokens_static.copy_(tokens.to(at::kLong), /*non_blocking=*/false);
    impl_->graph->replay();
    return impl_->logits_static.clone();
#else
    AVIARY_FAIL("internal: CUDA graph decoding without CUDA LibTorch");
#endif
}

}  // namespace aviary::detail
