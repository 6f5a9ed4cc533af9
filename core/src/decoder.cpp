// Decoder and prefill (decoder.h): each step goes to the CPU decode engine (cpu_engine.h) updating the decoder's own
// state in place, to the CUDA graph (decode_cuda_graph.cpp) when the model is on CUDA, or to Model::step.
#include "aviary/core/decoder.h"

#include <ATen/ATen.h>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"
#include "decode_cuda_graph.h"

namespace aviary {

struct Decoder::Impl {
    Model& model;
    int64_t batch;
    bool use_graph;
    std::shared_ptr<CpuEngine> engine;  // CPU: the shared decode engine (nullptr: Model::step)
    State state;                        // on CUDA with a graph: the fixed buffers the graph reads and updates
    std::unique_ptr<detail::CudaGraphStep> graph;  // when use_graph

    Impl(Model& m, int64_t b, bool g) : model(m), batch(b), use_graph(g) {}
};

Decoder::Decoder(Model& model, int64_t batch, bool use_graph) {
    AVIARY_CHECK(batch >= 1, "Decoder: batch must be >= 1, got ", batch);
    AVIARY_CHECK(!model.is_training(),
                 "Decoder: the model is in training mode; decoding needs inference mode "
                 "(Model::train(false))");
    bool graph = false;
#ifdef AVIARY_HAVE_CUDA_OP
    graph = use_graph && model.options().device == "cuda";
#endif
    impl_ = std::make_unique<Impl>(model, batch, graph);
    if (use_graph && model.options().device == "cpu") impl_->engine = shared_cpu_engine(model);
    impl_->state = model.new_state(batch);
    if (graph) impl_->graph = std::make_unique<detail::CudaGraphStep>(model, impl_->state, batch);
}

Decoder::~Decoder() = default;

at::Tensor Decoder::step(const at::Tensor& tokens) {
    AVIARY_CHECK(tokens.dim() == 1 && tokens.size(0) == impl_->batch,
                 "Decoder::step takes one token per sequence, "
                 "shape (",
                 impl_->batch, "), got ", tokens.sizes());
    if (impl_->engine) return impl_->engine->step(tokens, impl_->state);  // in place on the decoder's own state
    if (!impl_->use_graph) return impl_->model.step(tokens, impl_->state);
    return impl_->graph->step(tokens);
}

const State& Decoder::state() const {
    return impl_->state;
}

void Decoder::load_state(const State& state) {
    if (impl_->use_graph) {
        detail::copy_state_into(impl_->state, state);
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

bool Decoder::uses_graph() const {
    return impl_->use_graph;
}
bool Decoder::uses_engine() const {
    return impl_->engine != nullptr;
}
int64_t Decoder::batch() const {
    return impl_->batch;
}

}  // namespace aviary
