// Eagle (RWKV-5.2, x052) and Finch (RWKV-6, x060) as LibTorch modules with the official parameter names
// (LM RWKV-v5/src/model.py @86affd7: RWKV_Tmix_x052/x060, RWKV_CMix_x052/x060; spec §2). Sequence mode
// runs the whole (B, T) batch through the WKV dispatch; RNN mode is the same code with T = 1 and the state.
// Precision (spec §2.8, pitfall 4): residual stream, norms, LoRAs, decay, WKV and state in fp32; the big
// matrices in the chosen weight dtype (fp32 or bf16) with fp32 outputs. ln0 is applied in fp32 per token,
// which equals folding it into the embedding in fp32.
#include "aviary/core/model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>

#include "aviary/core/error.h"
#include "aviary/core/trainer.h"  // glob_match
#include "aviary/core/wkv4.h"

#ifdef AVIARY_HAVE_CUDA_OP
#include <c10/cuda/CUDAGraphsC10Utils.h>
#endif

namespace aviary {
namespace {

namespace F = torch::nn::functional;
constexpr double kLayerNormEps = 1e-5;
constexpr double kGroupNormEps = 64e-5;  // = eps 1e-5 on x / head_size_divisor 8 (spec §2.2, pitfall 5)

// y = x · Wᵀ with W in its storage dtype and an fp32 result.
at::Tensor matmul_w(const at::Tensor& x, const at::Tensor& weight) {
    if (weight.scalar_type() == at::kFloat) return at::linear(x, weight);
    return at::linear(x.to(weight.scalar_type()), weight).to(at::kFloat);
}

// True while the current CUDA stream is being captured into a CUDA graph (decode_cuda_graph.cpp): nothing may
// synchronise with the host then (no .item()). Only asked for CUDA tensors, so CPU runs never touch CUDA.
bool cuda_stream_capturing() {
#ifdef AVIARY_HAVE_CUDA_OP
    return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
#else
    return false;
#endif
}

// A bias-free linear layer that holds only `weight` (out, in), left uninitialised: from_tensors sets every
// parameter (infer_config rejects missing keys), and torch::nn::Linear's serial Kaiming init would cost tens of
// seconds for a 7B shape. Same parameter name ("<name>.weight") as nn.Linear, so state dicts round-trip.
struct MatrixImpl : torch::nn::Module {
    MatrixImpl(int64_t in, int64_t out) { weight = register_parameter("weight", torch::empty({out, in})); }
    at::Tensor weight;  // (out, in)
    // Optional LoRA adapter (Model::add_lora), registered as "lora_A" (r, in) and "lora_B" (out, r).
    std::shared_ptr<MatrixImpl> lora_A, lora_B;
    double lora_scale = 0;  // α / r
};
TORCH_MODULE(Matrix);

// y = x · Wᵀ + (α/r)·(x · Aᵀ) · Bᵀ when the matrix carries a LoRA adapter (the adapter in fp32).
at::Tensor matmul_w(const at::Tensor& x, const Matrix& m) {
    at::Tensor y = matmul_w(x, m->weight);
    if (!m->lora_A) return y;
    return y + at::linear(at::linear(x, m->lora_A->weight), m->lora_B->weight) * m->lora_scale;
}

at::Tensor layer_norm(const at::Tensor& x, const torch::nn::LayerNorm& ln) {
    return at::layer_norm(x, {x.size(-1)}, ln->weight, ln->bias, kLayerNormEps);
}

// Token shift: the previous token's vector for every position, the first taken from the state.
// x (B, T, D), prev0 (B, D) -> (B, T, D)
at::Tensor shift(const at::Tensor& x, const at::Tensor& prev0) {
    if (x.size(1) == 1) return prev0.unsqueeze(1);
    return at::cat({prev0.unsqueeze(1), x.narrow(1, 0, x.size(1) - 1)}, 1);
}

struct TimeMixImpl : torch::nn::Module {
    TimeMixImpl(const ModelConfig& c, bool with_state) : cfg(c) {
        const int64_t D = c.n_embd, A = c.n_att, H = c.n_head, N = c.head_size;
        if (c.version == 4) {  // RWKV-4 (v4neo): static lerps, per-channel decay and bonus, no gate / ln_x
            time_mix_k = register_parameter("time_mix_k", torch::zeros({1, 1, D}));
            time_mix_v = register_parameter("time_mix_v", torch::zeros({1, 1, D}));
            time_mix_r = register_parameter("time_mix_r", torch::zeros({1, 1, D}));
            time_decay = register_parameter("time_decay", torch::zeros({A}));
            time_first = register_parameter("time_first", torch::zeros({A}));
            receptance = register_module("receptance", Matrix(D, A));
            key = register_module("key", Matrix(D, A));
            value = register_module("value", Matrix(D, A));
            output = register_module("output", Matrix(A, D));
            return;
        }
        if (c.version == 5) {
            time_mix_k = register_parameter("time_mix_k", torch::zeros({1, 1, D}));
            time_mix_v = register_parameter("time_mix_v", torch::zeros({1, 1, D}));
            time_mix_r = register_parameter("time_mix_r", torch::zeros({1, 1, D}));
            time_mix_g = register_parameter("time_mix_g", torch::zeros({1, 1, D}));
            time_decay = register_parameter("time_decay", torch::zeros({H, N}));
            time_faaaa = register_parameter("time_faaaa", torch::zeros({H, N}));
        } else {
            time_maa_x = register_parameter("time_maa_x", torch::zeros({1, 1, D}));
            time_maa_w = register_parameter("time_maa_w", torch::zeros({1, 1, D}));
            time_maa_k = register_parameter("time_maa_k", torch::zeros({1, 1, D}));
            time_maa_v = register_parameter("time_maa_v", torch::zeros({1, 1, D}));
            time_maa_r = register_parameter("time_maa_r", torch::zeros({1, 1, D}));
            time_maa_g = register_parameter("time_maa_g", torch::zeros({1, 1, D}));
            time_maa_w1 = register_parameter("time_maa_w1", torch::zeros({D, 5 * int64_t(c.mix_lora_rank)}));
            time_maa_w2 = register_parameter("time_maa_w2", torch::zeros({5, c.mix_lora_rank, D}));
            time_decay = register_parameter("time_decay", torch::zeros({1, 1, A}));
            time_decay_w1 = register_parameter("time_decay_w1", torch::zeros({D, c.decay_lora_rank}));
            time_decay_w2 = register_parameter("time_decay_w2", torch::zeros({c.decay_lora_rank, A}));
            time_faaaa = register_parameter("time_faaaa", torch::zeros({H, N}));
        }
        if (with_state) time_state = register_parameter("time_state", torch::zeros({H, N, N}));
        receptance = register_module("receptance", Matrix(D, A));
        key = register_module("key", Matrix(D, A));
        value = register_module("value", Matrix(D, A));
        output = register_module("output", Matrix(A, D));
        gate = register_module("gate", Matrix(D, A));
        ln_x = register_module("ln_x", torch::nn::GroupNorm(torch::nn::GroupNormOptions(H, A).eps(kGroupNormEps)));
    }

    // a = LN1(x) (B, T, D); prev = shifted a; S (B, H, N, N) in/out.
    at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) {
        const int64_t B = a.size(0), T = a.size(1), H = cfg.n_head, N = cfg.head_size, A = cfg.n_att;
        if (cfg.version == 4) return forward_v4(a, prev, S);
        at::Tensor xr, xk, xv, xg, log_w;
        if (cfg.version == 5) {
            // x_c = a·μ_c + prev·(1 − μ_c)   (v5 lerp weights the current token; pitfall 1)
            xk = a * time_mix_k + prev * (1 - time_mix_k);
            xv = a * time_mix_v + prev * (1 - time_mix_v);
            xr = a * time_mix_r + prev * (1 - time_mix_r);
            xg = a * time_mix_g + prev * (1 - time_mix_g);
            // decay = exp(−exp(time_decay)), static per channel; log decay = −exp(w)   (1, 1, H, N)
            log_w = -time_decay.exp().view({1, 1, H, N});
        } else {
            // ddlerp (spec §2.4): d = prev − a; m0 = a + d·μ_x; h = tanh(m0·W1) split into w,k,v,r,g blocks
            at::Tensor d = prev - a;
            at::Tensor m0 = a + d * time_maa_x;
            const int64_t Lm = cfg.mix_lora_rank;
            at::Tensor h = at::tanh(at::matmul(m0, time_maa_w1)).view({B * T, 5, Lm}).transpose(0, 1);  // (5, BT, Lm)
            at::Tensor delta = at::bmm(h, time_maa_w2).view({5, B, T, cfg.n_embd});                      // (5, B, T, D)
            at::Tensor xw = a + d * (time_maa_w + delta[0]);
            xk = a + d * (time_maa_k + delta[1]);
            xv = a + d * (time_maa_v + delta[2]);
            xr = a + d * (time_maa_r + delta[3]);
            xg = a + d * (time_maa_g + delta[4]);
            // w_raw = time_decay + tanh(x_w·Dw1)·Dw2 (fp32); log decay = −exp(w_raw)   (B, T, H, N)
            at::Tensor w_raw = time_decay + at::matmul(at::tanh(at::matmul(xw, time_decay_w1)), time_decay_w2);
            log_w = -w_raw.exp().view({B, T, H, N});
        }
        at::Tensor r = matmul_w(xr, receptance).view({B, T, H, N});
        at::Tensor k = matmul_w(xk, key).view({B, T, H, N});
        at::Tensor v = matmul_w(xv, value).view({B, T, H, N});
        at::Tensor g = F::silu(matmul_w(xg, gate));  // (B, T, A)
        auto [y, S_out] = wkv(r, k, v, log_w, time_faaaa, S, opt.wkv, opt.wkv_chunk);
        S = S_out;
        // GroupNorm over each head's N channels, eps 64e-5, per-channel affine; then gate; then output.
        at::Tensor o = at::group_norm(y.reshape({B * T, A}), H, ln_x->weight, ln_x->bias, kGroupNormEps).view({B, T, A});
        return matmul_w(o * g, output);
    }

    // RWKV-4: x_c = a·μ_c + prev·(1 − μ_c); r = σ(W_r x_r); wkv with w = −exp(time_decay), u = time_first;
    // out = W_o (r ⊙ wkv)   (official rwkv att_seq/att_one, version 4). S (B, 3, A) = (aa, bb, pp).
    at::Tensor forward_v4(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S) {
        at::Tensor xk = a * time_mix_k + prev * (1 - time_mix_k);
        at::Tensor xv = a * time_mix_v + prev * (1 - time_mix_v);
        at::Tensor xr = a * time_mix_r + prev * (1 - time_mix_r);
        at::Tensor r = at::sigmoid(matmul_w(xr, receptance));
        at::Tensor k = matmul_w(xk, key), v = matmul_w(xv, value);  // (B, T, A) fp32 (bf16 under autocast)
        // the recurrence in fp32 also under bf16 training's autocast, as the WKV's (wkv_dispatch.cpp)
        auto [y, S_out] = [&] {
            c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
            return wkv4_parallel(-time_decay.exp(), time_first, k.to(at::kFloat), v.to(at::kFloat), S);
        }();
        S = S_out;
        return matmul_w(r * y, output);
    }

    ModelConfig cfg;
    at::Tensor time_first;  // RWKV-4 only
    at::Tensor time_mix_k, time_mix_v, time_mix_r, time_mix_g;
    at::Tensor time_maa_x, time_maa_w, time_maa_k, time_maa_v, time_maa_r, time_maa_g, time_maa_w1, time_maa_w2;
    at::Tensor time_decay, time_decay_w1, time_decay_w2, time_faaaa, time_state;
    Matrix receptance{nullptr}, key{nullptr}, value{nullptr}, output{nullptr}, gate{nullptr};
    torch::nn::GroupNorm ln_x{nullptr};
};
TORCH_MODULE(TimeMix);

struct ChannelMixImpl : torch::nn::Module {
    explicit ChannelMixImpl(const ModelConfig& c) : version(c.version) {
        const int64_t D = c.n_embd, Fd = c.ffn_dim;
        const std::string p = c.version == 6 ? "time_maa_" : "time_mix_";  // RWKV-4 and 5: time_mix_
        mix_k = register_parameter(p + "k", torch::zeros({1, 1, D}));
        mix_r = register_parameter(p + "r", torch::zeros({1, 1, D}));
        key = register_module("key", Matrix(D, Fd));
        receptance = register_module("receptance", Matrix(D, D));
        value = register_module("value", Matrix(Fd, D));
    }

    at::Tensor forward(const at::Tensor& b, const at::Tensor& prev) {
        at::Tensor xk, xr;
        if (version != 6) {
            xk = b * mix_k + prev * (1 - mix_k);  // v4/v5: weight on the current token
            xr = b * mix_r + prev * (1 - mix_r);
        } else {
            xk = b + (prev - b) * mix_k;  // v6: weight on the previous-minus-current difference
            xr = b + (prev - b) * mix_r;
        }
        // κ = relu(W_k x_k)²; out = σ(W_r x_r) ⊙ (W_v κ)   (spec §2.6)
        at::Tensor kk = at::relu(matmul_w(xk, key)).square();
        return at::sigmoid(matmul_w(xr, receptance)) * matmul_w(kk, value);
    }

    int version;
    at::Tensor mix_k, mix_r;
    Matrix key{nullptr}, receptance{nullptr}, value{nullptr};
};
TORCH_MODULE(ChannelMix);

struct BlockImpl : torch::nn::Module {
    BlockImpl(const ModelConfig& c, int layer) {
        const int64_t D = c.n_embd;
        ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(kLayerNormEps)));
        ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(kLayerNormEps)));
        if (layer == 0)
            ln0 = register_module("ln0", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(kLayerNormEps)));
        att = register_module("att", TimeMix(c, c.has_time_state));
        ffn = register_module("ffn", ChannelMix(c));
    }
    torch::nn::LayerNorm ln0{nullptr}, ln1{nullptr}, ln2{nullptr};
    TimeMix att{nullptr};
    ChannelMix ffn{nullptr};
};
TORCH_MODULE(Block);

struct RwkvImpl : torch::nn::Module {
    explicit RwkvImpl(const ModelConfig& c) {
        emb = register_module("emb", torch::nn::Embedding(c.vocab_size, c.n_embd));
        blocks = register_module("blocks", torch::nn::ModuleList());
        for (int l = 0; l < c.n_layer; ++l) blocks->push_back(Block(c, l));
        ln_out = register_module("ln_out", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd}).eps(kLayerNormEps)));
        head = register_module("head", Matrix(c.n_embd, c.vocab_size));
    }
    torch::nn::Embedding emb{nullptr};
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm ln_out{nullptr};
    Matrix head{nullptr};
};
TORCH_MODULE(Rwkv);

bool is_matrix_weight(const std::string& name) {
    // The big matrices that take the weight dtype; LoRAs, mixes, decay, norms stay fp32 (spec §2.8).
    auto ends_with = [&](const char* s) {
        const std::string suf(s);
        return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (name == "emb.weight" || name == "head.weight") return true;
    for (const char* s : {"att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight",
                          "att.gate.weight", "ffn.key.weight", "ffn.receptance.weight", "ffn.value.weight"})
        if (ends_with(s)) return true;
    return false;
}

}  // namespace

struct Model::Impl {
    ModelConfig config;
    ModelOptions options;
    Rwkv net{nullptr};
    torch::Device device{torch::kCPU};
    bool training = false;
    bool has_lora = false;  // add_lora() was called (and merge_lora() not yet)
    std::shared_ptr<void> derived_cache;  // Model::derived_cache()
    LoraOptions lora;

    at::Tensor run(at::Tensor x, State& state, bool all_logits, const Model::BlockHook* hook = nullptr) {
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
};

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::load(const std::string& path, const ModelOptions& options) {
    return from_tensors(read_checkpoint(path), options);
}

void check_device(const std::string& device) {
    AVIARY_CHECK(device == "cpu" || device == "cuda", "unknown device '", device, "' (expected cpu or cuda)");
    if (device == "cuda")
        AVIARY_CHECK(torch::cuda::is_available(), "--device cuda was asked for, but this build has no CUDA LibTorch "
                                                  "or no GPU is visible");
}

Model Model::from_tensors(const TensorList& tensors, const ModelOptions& requested) {
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

const ModelConfig& Model::config() const { return impl_->config; }
const ModelOptions& Model::options() const { return impl_->options; }

void Model::train(bool on) {
    impl_->training = on;
    impl_->net->train(on);
    for (auto& p : impl_->net->parameters()) p.set_requires_grad(on);
}
bool Model::is_training() const { return impl_->training; }
std::shared_ptr<void>& Model::derived_cache() const { return impl_->derived_cache; }

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
    AVIARY_CHECK(x.dim() == 3 && x.size(2) == impl_->config.n_embd, "embeddings must be (B, T, ",
                 impl_->config.n_embd, ")");
    AVIARY_CHECK(x.size(1) >= 1, "empty input sequence");
    std::optional<torch::NoGradGuard> no_grad;
    if (!impl_->training) no_grad.emplace();
    return impl_->run(x.to(impl_->device, at::kFloat), state, all_logits);
}

at::Tensor Model::forward_embeddings(const at::Tensor& x, State& state, bool all_logits, const BlockHook& hook) {
    AVIARY_CHECK(x.dim() == 3 && x.size(2) == impl_->config.n_embd, "embeddings must be (B, T, ",
                 impl_->config.n_embd, ")");
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

// ---- LoRA and state tuning (model.h "fine-tuning") ----

namespace {

// Every matrix of the model by its module name ("blocks.0.att.key", "head"), adapters excluded.
std::vector<std::pair<std::string, std::shared_ptr<MatrixImpl>>> matrices_of(const Rwkv& net) {
    std::vector<std::pair<std::string, std::shared_ptr<MatrixImpl>>> out;
    for (const auto& item : net->named_modules("", /*include_self=*/false)) {
        auto m = std::dynamic_pointer_cast<MatrixImpl>(item.value());
        const std::string& name = item.key();
        if (m && name.find(".lora_") == std::string::npos) out.emplace_back(name, m);
    }
    return out;
}

// "blocks.3.att.key" -> "att.key"; other names unchanged.
std::string name_in_block(const std::string& name) {
    if (name.rfind("blocks.", 0) != 0) return name;
    const size_t dot = name.find('.', 7);
    return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool is_lora_name(const std::string& name) {
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

// (α/r)·B·A   (out, in) fp32
at::Tensor lora_delta(const MatrixImpl& m) {
    return at::matmul(m.lora_B->weight.detach(), m.lora_A->weight.detach()) * m.lora_scale;
}

}  // namespace

int Model::add_lora(const LoraOptions& o) {
    AVIARY_CHECK(!impl_->has_lora, "the model already has LoRA adapters");
    AVIARY_CHECK(o.rank >= 1, "LoRA rank must be >= 1, got ", o.rank);
    AVIARY_CHECK(o.alpha > 0, "LoRA alpha must be > 0, got ", o.alpha);
    AVIARY_CHECK(!o.targets.empty(), "LoRA needs at least one target (e.g. att.key)");
    std::vector<bool> used(o.targets.size(), false);
    std::vector<std::shared_ptr<MatrixImpl>> chosen;
    for (const auto& [name, m] : matrices_of(impl_->net)) {
        bool hit = false;
        for (size_t i = 0; i < o.targets.size(); ++i) {
            if (glob_match(o.targets[i], name) || glob_match(o.targets[i], name_in_block(name))) {
                used[i] = true;
                hit = true;
            }
        }
        if (hit) chosen.push_back(m);
    }
    for (size_t i = 0; i < o.targets.size(); ++i)
        AVIARY_CHECK(used[i], "LoRA target '", o.targets[i],
                     "' matches no matrix (names look like att.key, att.output, ffn.value, head)");
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    torch::NoGradGuard no_grad;
    for (auto& m : chosen) {
        const int64_t out = m->weight.size(0), in = m->weight.size(1);
        // A (r, in) ~ U(±1/√in): kaiming_uniform_(a=√5) of nn.Linear; B (out, r) = 0
        const double bound = 1.0 / std::sqrt(double(in));
        auto A = std::make_shared<MatrixImpl>(in, o.rank);
        A->weight.set_data((at::rand({o.rank, in}, gen, f32) * (2 * bound) - bound).to(impl_->device));
        auto B = std::make_shared<MatrixImpl>(o.rank, out);
        B->weight.set_data(at::zeros({out, o.rank}, f32.device(impl_->device)));
        A->weight.set_requires_grad(impl_->training);
        B->weight.set_requires_grad(impl_->training);
        m->lora_A = m->register_module("lora_A", A);
        m->lora_B = m->register_module("lora_B", B);
        m->lora_scale = o.alpha / double(o.rank);
    }
    impl_->lora = o;
    impl_->has_lora = true;
    return int(chosen.size());
}

bool Model::has_lora() const { return impl_->has_lora; }
const LoraOptions& Model::lora_options() const { return impl_->lora; }

TensorList Model::lora_state_dict() const {
    TensorList out;
    for (const auto& nt : state_dict())
        if (is_lora_name(nt.name)) out.push_back(nt);
    return out;
}

void Model::merge_lora() {
    torch::NoGradGuard no_grad;
    for (auto& [name, m] : matrices_of(impl_->net)) {
        if (!m->lora_A) continue;
        // W += (α/r)·B·A
        m->weight.add_(lora_delta(*m).to(m->weight.scalar_type()));
        m->unregister_module("lora_A");
        m->unregister_module("lora_B");
        m->lora_A.reset();
        m->lora_B.reset();
        m->lora_scale = 0;
    }
    impl_->has_lora = false;
}

TensorList Model::export_state_dict() const {
    std::map<std::string, std::shared_ptr<MatrixImpl>> adapted;
    for (const auto& [name, m] : matrices_of(impl_->net))
        if (m->lora_A) adapted[name + ".weight"] = m;
    TensorList out;
    for (const auto& nt : state_dict()) {
        if (is_lora_name(nt.name)) continue;
        auto it = adapted.find(nt.name);
        if (it == adapted.end()) {
            out.push_back({nt.name, nt.tensor.detach()});
        } else {
            const at::Tensor& w = it->second->weight;
            out.push_back({nt.name, (w.detach().to(at::kFloat) + lora_delta(*it->second)).to(w.scalar_type())});
        }
    }
    return out;
}

void Model::add_time_state() {
    auto& c = impl_->config;
    if (c.has_time_state) return;
    AVIARY_CHECK(c.version != 4, "state tuning (time_state) needs an RWKV-5/6 model; RWKV-4 has no matrix state");
    torch::NoGradGuard no_grad;
    for (int l = 0; l < c.n_layer; ++l) {
        auto& att = impl_->net->blocks[l]->as<BlockImpl>()->att;
        // (H, N_value, N_key), zeros as the official RWKV_Tmix_x060_state (spec §7.2)
        att->time_state = att->register_parameter(
            "time_state", at::zeros({c.n_head, c.head_size, c.head_size}, at::TensorOptions().device(impl_->device)),
            /*requires_grad=*/impl_->training);
    }
    c.has_time_state = true;
}

}  // namespace aviary
