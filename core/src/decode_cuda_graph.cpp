// Decoder (decoder.h): the RNN step captured in a CUDA graph (at::cuda::CUDAGraph) on a side stream from the pool,
// with a static token input, static state tensors that the captured step updates in place (copy_ at its end) and a
// static logits output; each token is one graph replay. Without CUDA LibTorch (AVIARY_HAVE_CUDA_OP unset) it is
// Model::step; on the CPU it is the CPU decode engine (cpu_engine.h) updating the decoder's own state in place.
// Pattern of rwkv pip 0.8.31+ (forward_one_alt + torch.cuda.CUDAGraph).
#include "aviary/core/decoder.h"

#include <ATen/ATen.h>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"

#ifdef AVIARY_HAVE_CUDA_OP
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace aviary {
namespace {

// dst[i] ← src[i] for every tensor of the state, in place (shapes must match).
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

}  // namespace

struct Decoder::Impl {
    Model& model;
    int64_t batch;
    bool use_graph;
    std::shared_ptr<CpuEngine> engine;  // CPU: the shared decode engine (nullptr: Model::step)
    State state;  // on CUDA with a graph: the fixed buffers the graph reads and updates
#ifdef AVIARY_HAVE_CUDA_OP
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    at::Tensor tokens_static;  // (B) int64 on the device
    at::Tensor logits_static;  // (B, V) fp32, written by each replay
#endif

    Impl(Model& m, int64_t b, bool g) : model(m), batch(b), use_graph(g) {}

#ifdef AVIARY_HAVE_CUDA_OP
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

Decoder::Decoder(Model& model, int64_t batch, bool use_graph) {
    AVIARY_CHECK(batch >= 1, "Decoder: batch must be >= 1, got ", batch);
    AVIARY_CHECK(!model.is_training(), "Decoder: the model is in training mode; decoding needs inference mode "
                                       "(Model::train(false))");
    bool graph = false;
#ifdef AVIARY_HAVE_CUDA_OP
    graph = use_graph && model.options().device == "cuda";
#endif
    impl_ = std::make_unique<Impl>(model, batch, graph);
    if (use_graph && model.options().device == "cpu") impl_->engine = shared_cpu_engine(model);
    impl_->state = model.new_state(batch);
}

Decoder::~Decoder() = default;

at::Tensor Decoder::step(const at::Tensor& tokens) {
    AVIARY_CHECK(tokens.dim() == 1 && tokens.size(0) == impl_->batch, "Decoder::step takes one token per sequence, "
                 "shape (", impl_->batch, "), got ", tokens.sizes());
    if (impl_->engine) return impl_->engine->step(tokens, impl_->state);  // in place on the decoder's own state
    if (!impl_->use_graph) return impl_->model.step(tokens, impl_->state);
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

const State& Decoder::state() const { return impl_->state; }

void Decoder::load_state(const State& state) {
    if (impl_->use_graph) {
        copy_state_into(impl_->state, state);
    } else {
        AVIARY_CHECK(state.n_layer() == impl_->state.n_layer() && state.batch() == impl_->batch,
                     "Decoder::load_state: the state must have ", impl_->state.n_layer(), " layers and batch ",
                     impl_->batch);
        impl_->state = state.clone();  // owned: the CPU engine updates it in place
    }
}

at::Tensor prefill(Model& model, const at::Tensor& tokens, State& state) {
    if (model.options().device == "cpu")
        if (auto engine = shared_cpu_engine(model)) return engine->prefill(tokens, state);
    return model.forward(tokens, state, /*all_logits=*/false);
}

bool Decoder::uses_graph() const { return impl_->use_graph; }
bool Decoder::uses_engine() const { return impl_->engine != nullptr; }
int64_t Decoder::batch() const { return impl_->batch; }

}  // namespace aviary
