// The model API (model.h) over the LibTorch modules of model_impl.h: loading with dtype choice, sequence mode (the
// whole (B, T) batch through the WKV dispatch) and RNN mode (the same code with T = 1 and the state), the state
// (LM RWKV-v5/src/model.py @86affd7; spec §2). The time-mix of each version is in time_mix_v4/v5/v6.cpp, LoRA and
// state tuning in model_lora.cpp. Precision (spec §2.8, pitfall 4): residual stream, norms, LoRAs, decay, WKV and
// state in fp32; the big matrices in the chosen weight dtype (fp32 or bf16) with fp32 outputs. ln0 is applied in
// fp32 per token, which equals folding it into the embedding in fp32.
#include "aviary/core/model.h"

#include <torch/torch.h>

#include <optional>

#include "aviary/core/error.h"
#include "aviary/core/wkv4.h"
#include "model_impl.h"

#ifdef AVIARY_HAVE_CUDA_OP
#include <c10/cuda/CUDAGraphsC10Utils.h>
#endif

namespace aviary {

using namespace model_internal;

namespace {

// True while the current CUDA stream is being captured into a CUDA graph (decode_cuda_graph.cpp): nothing may
// synchronise with the host then (no .item()). Only asked for CUDA tensors, so CPU runs never touch CUDA.
bool cuda_stream_capturing() {
#ifdef AVIARY_HAVE_CUDA_OP
    return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
#else
    return false;
#endif
}

}  // namespace

at::Tensor Model::Impl::run(at::Tensor x, State& state, bool all_logits, const Model::BlockHook* hook) {
    const int64_t B = x.size(0);
    AVIARY_CHECK(state.n_layer() == config.n_layer, "state has ", state.n_layer(), " layers, the model has ",
                 config.n_layer);
    AVIARY_CHECK(state.batch() == B, "state batch ", state.batch(), " does not match input batch ", B);
    for (int l = 0; l < config.n_layer; ++l) {
        auto* blk = net->blocks[l]->as<BlockImpl>();
        if (hook) x = (*hook)(l, x, /*after_block=*/false);
        if (l == 0) x = layer_norm(x, blk->ln0);  // ln0 on the embedding, fp32
        at::Tensor a = layer_norm(x, blk->ln1);
        at::Tensor a_prev = shift(a, state.att_shift[l]);
        state.att_shift[l] = a.select(1, a.size(1) - 1);
        x = x + blk->att->forward(a, a_prev, state.wkv[l], options);
        at::Tensor b = layer_norm(x, blk->ln2);
        at::Tensor b_prev = shift(b, state.ffn_shift[l]);
        state.ffn_shift[l] = b.select(1, b.size(1) - 1);
        x = x + blk->ffn->forward(b, b_prev);
        if (hook) x = (*hook)(l, x, /*after_block=*/true);
    }
    if (!all_logits) x = x.select(1, x.size(1) - 1);
    x = layer_norm(x, net->ln_out);
    return matmul_w(x, net->head);
}

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::load(const std::string& path, const ModelOptions& options) {
    return from_tensors(read_checkpoint(path), options, path);  // read_checkpoint's errors name the file already
}

void check_device(const std::string& device) {
    AVIARY_CHECK(device == "cpu" || device == "cuda", "unknown device '", device, "' (expected cpu or cuda)");
    if (device == "cuda")
        AVIARY_CHECK(torch::cuda::is_available(),
                     "--device cuda was asked for, but this build has no CUDA LibTorch "
                     "or no GPU is visible");
}

Model Model::from_tensors(const TensorList& tensors, const ModelOptions& requested, const std::string& source) {
    if (!source.empty()) {
        check_device(requested.device);  // not the file's fault
        try {
            return from_tensors(tensors, requested);
        } catch (const UsageError&) {
            throw;
        } catch (const Error& e) {  // what the tensors lack or hold wrongly: say which file
            throw Error("model '" + source + "': " + e.what());
        }
    }
    AVIARY_CHECK(requested.dtype == "fp32" || requested.dtype == "bf16" || requested.dtype == "auto",
                 "unknown weight dtype '", requested.dtype, "' (expected fp32, bf16 or auto)");
    ModelOptions options = requested;
    if (options.dtype == "auto") {  // the stored precision of the matrices (the first one decides)
        options.dtype = "fp32";
        for (const auto& nt : tensors)
            if (is_matrix_weight(nt.name)) {
                if (nt.tensor.scalar_type() == at::kBFloat16) options.dtype = "bf16";
                break;
            }
    }
    check_device(options.device);
    Model m;
    m.impl_->config = infer_config(tensors);
    m.impl_->options = options;
    if (options.device == "cuda") m.impl_->device = torch::Device(torch::kCUDA);
    m.impl_->net = Rwkv(m.impl_->config);
    torch::NoGradGuard no_grad;
    auto params = m.impl_->net->named_parameters(/*recurse=*/true);
    for (const auto& nt : tensors) {
        at::Tensor* p = params.find(nt.name);
        AVIARY_CHECK(p != nullptr, "internal: no parameter for key '", nt.name, "'");
        const auto dtype = (options.dtype == "bf16" && is_matrix_weight(nt.name)) ? at::kBFloat16 : at::kFloat;
        // Straight to the device in the target dtype (one copy; 7B fp32 would not fit twice in host memory).
        p->set_data(nt.tensor.to(m.impl_->device, dtype).contiguous());
    }
    m.impl_->net->to(m.impl_->device);
    m.train(false);
    return m;
}

const ModelConfig& Model::config() const {
    return impl_->config;
}
const ModelOptions& Model::options() const {
    return impl_->options;
}

void Model::train(bool on) {
    impl_->training = on;
    impl_->net->train(on);
    for (auto& p : impl_->net->parameters()) p.set_requires_grad(on);
}
bool Model::is_training() const {
    return impl_->training;
}
std::shared_ptr<void>& Model::derived_cache() const {
    return impl_->derived_cache;
}

State Model::new_state(int64_t batch) const {
    const auto& c = impl_->config;
    AVIARY_CHECK(batch >= 1, "state batch must be >= 1, got ", batch);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(impl_->device);
    State s;
    for (int l = 0; l < c.n_layer; ++l) {
        s.att_shift.push_back(torch::zeros({batch, c.n_embd}, f32));
        s.ffn_shift.push_back(torch::zeros({batch, c.n_embd}, f32));
        const auto& att = impl_->net->blocks[l]->as<BlockImpl>()->att;
        if (c.version == 4) {
            s.wkv.push_back(wkv4_empty_state(batch, c.n_att, f32));  // (B, 3, A): aa, bb, pp
        } else if (att->time_state.defined()) {
            // time_state is stored [value][key] (official kernels); the state here is [key][value] (spec §3.3).
            // In training the state keeps its graph, so state tuning gets gradients through the WKV's initial state.
            const at::Tensor ts = impl_->training ? att->time_state : att->time_state.detach();
            s.wkv.push_back(ts.transpose(1, 2).to(f32).unsqueeze(0).repeat({batch, 1, 1, 1}));
        } else {
            s.wkv.push_back(torch::zeros({batch, c.n_head, c.head_size, c.head_size}, f32));
        }
    }
    return s;
}

at::Tensor Model::embed(const at::Tensor& tokens) const {
    AVIARY_CHECK(tokens.dim() == 2, "tokens must be (B, T), got ", tokens.dim(), "-D");
    AVIARY_CHECK(tokens.size(1) >= 1, "empty token sequence");
    // Range check on the host copy when there is one (no device round trip); device tokens are checked on the
    // device, except while a CUDA graph is being captured (Decoder checks host tokens before its graph replays).
    const bool check = !tokens.is_cuda() || !cuda_stream_capturing();
    if (check) {
        const at::Tensor where = tokens.is_cuda() ? tokens : tokens.to(at::kLong);
        const int64_t lo = where.min().item<int64_t>(), hi = where.max().item<int64_t>();
        AVIARY_CHECK(lo >= 0 && hi < impl_->config.vocab_size, "token id ", (lo < 0 ? lo : hi),
                     " is out of range (vocabulary size ", impl_->config.vocab_size, ")");
    }
    at::Tensor ids = tokens.to(impl_->device, at::kLong);
    return at::embedding(impl_->net->emb->weight, ids).to(at::kFloat);
}

at::Tensor Model::forward_embeddings(const at::Tensor& x, State& state, bool all_logits) {
    AVIARY_CHECK(x.dim() == 3 && x.size(2) == impl_->config.n_embd, "embeddings must be (B, T, ", impl_->config.n_embd,
                 ")");
    AVIARY_CHECK(x.size(1) >= 1, "empty input sequence");
    std::optional<torch::NoGradGuard> no_grad;
    if (!impl_->training) no_grad.emplace();
    return impl_->run(x.to(impl_->device, at::kFloat), state, all_logits);
}

at::Tensor Model::forward_embeddings(const at::Tensor& x, State& state, bool all_logits, const BlockHook& hook) {
    AVIARY_CHECK(x.dim() == 3 && x.size(2) == impl_->config.n_embd, "embeddings must be (B, T, ", impl_->config.n_embd,
                 ")");
    AVIARY_CHECK(x.size(1) >= 1, "empty input sequence");
    std::optional<torch::NoGradGuard> no_grad;
    if (!impl_->training) no_grad.emplace();
    return impl_->run(x.to(impl_->device, at::kFloat), state, all_logits, hook ? &hook : nullptr);
}

at::Tensor Model::forward(const at::Tensor& tokens, State& state, bool all_logits) {
    std::optional<torch::NoGradGuard> no_grad;
    if (!impl_->training) no_grad.emplace();
    return impl_->run(embed(tokens), state, all_logits);
}

at::Tensor Model::step(const at::Tensor& tokens, State& state) {
    AVIARY_CHECK(tokens.dim() == 1, "step takes one token per sequence, shape (B)");
    return forward(tokens.unsqueeze(1), state, /*all_logits=*/false);
}

TensorList Model::state_dict() const {
    TensorList out;
    for (const auto& item : impl_->net->named_parameters(true)) out.push_back({item.key(), item.value()});
    return out;
}

}  // namespace aviary
