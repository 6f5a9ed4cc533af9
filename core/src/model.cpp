// Eagle (RWKV-5.2, x052) and Finch (RWKV-6, x060) as LibTorch modules with the official parameter names
// (LM RWKV-v5/src/model.py @86affd7: RWKV_Tmix_x052/x060, RWKV_CMix_x052/x060; spec §2). Sequence mode
// runs the whole (B, T) batch through the WKV dispatch; RNN mode is the same code with T = 1 and the state.
// Precision (spec §2.8, pitfall 4): residual stream, norms, LoRAs, decay, WKV and state in fp32; the big
// matrices in the chosen weight dtype (fp32 or bf16) with fp32 outputs. ln0 is applied in fp32 per token,
// which equals folding it into the embedding in fp32.
#include "aviary/core/model.h"

#include <torch/torch.h>

#include <optional>

#include "aviary/core/error.h"

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
        receptance = register_module("receptance", torch::nn::Linear(torch::nn::LinearOptions(D, A).bias(false)));
        key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(D, A).bias(false)));
        value = register_module("value", torch::nn::Linear(torch::nn::LinearOptions(D, A).bias(false)));
        output = register_module("output", torch::nn::Linear(torch::nn::LinearOptions(A, D).bias(false)));
        gate = register_module("gate", torch::nn::Linear(torch::nn::LinearOptions(D, A).bias(false)));
        ln_x = register_module("ln_x", torch::nn::GroupNorm(torch::nn::GroupNormOptions(H, A).eps(kGroupNormEps)));
    }

    // a = LN1(x) (B, T, D); prev = shifted a; S (B, H, N, N) in/out.
    at::Tensor forward(const at::Tensor& a, const at::Tensor& prev, at::Tensor& S, const ModelOptions& opt) {
        const int64_t B = a.size(0), T = a.size(1), H = cfg.n_head, N = cfg.head_size, A = cfg.n_att;
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
        at::Tensor r = matmul_w(xr, receptance->weight).view({B, T, H, N});
        at::Tensor k = matmul_w(xk, key->weight).view({B, T, H, N});
        at::Tensor v = matmul_w(xv, value->weight).view({B, T, H, N});
        at::Tensor g = F::silu(matmul_w(xg, gate->weight));  // (B, T, A)
        auto [y, S_out] = wkv(r, k, v, log_w, time_faaaa, S, opt.wkv, opt.wkv_chunk);
        S = S_out;
        // GroupNorm over each head's N channels, eps 64e-5, per-channel affine; then gate; then output.
        at::Tensor o = at::group_norm(y.reshape({B * T, A}), H, ln_x->weight, ln_x->bias, kGroupNormEps).view({B, T, A});
        return matmul_w(o * g, output->weight);
    }

    ModelConfig cfg;
    at::Tensor time_mix_k, time_mix_v, time_mix_r, time_mix_g;
    at::Tensor time_maa_x, time_maa_w, time_maa_k, time_maa_v, time_maa_r, time_maa_g, time_maa_w1, time_maa_w2;
    at::Tensor time_decay, time_decay_w1, time_decay_w2, time_faaaa, time_state;
    torch::nn::Linear receptance{nullptr}, key{nullptr}, value{nullptr}, output{nullptr}, gate{nullptr};
    torch::nn::GroupNorm ln_x{nullptr};
};
TORCH_MODULE(TimeMix);

struct ChannelMixImpl : torch::nn::Module {
    explicit ChannelMixImpl(const ModelConfig& c) : version(c.version) {
        const int64_t D = c.n_embd, Fd = c.ffn_dim;
        const std::string p = c.version == 5 ? "time_mix_" : "time_maa_";
        mix_k = register_parameter(p + "k", torch::zeros({1, 1, D}));
        mix_r = register_parameter(p + "r", torch::zeros({1, 1, D}));
        key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(D, Fd).bias(false)));
        receptance = register_module("receptance", torch::nn::Linear(torch::nn::LinearOptions(D, D).bias(false)));
        value = register_module("value", torch::nn::Linear(torch::nn::LinearOptions(Fd, D).bias(false)));
    }

    at::Tensor forward(const at::Tensor& b, const at::Tensor& prev) {
        at::Tensor xk, xr;
        if (version == 5) {
            xk = b * mix_k + prev * (1 - mix_k);  // v5: weight on the current token
            xr = b * mix_r + prev * (1 - mix_r);
        } else {
            xk = b + (prev - b) * mix_k;  // v6: weight on the previous-minus-current difference
            xr = b + (prev - b) * mix_r;
        }
        // κ = relu(W_k x_k)²; out = σ(W_r x_r) ⊙ (W_v κ)   (spec §2.6)
        at::Tensor kk = at::relu(matmul_w(xk, key->weight)).square();
        return at::sigmoid(matmul_w(xr, receptance->weight)) * matmul_w(kk, value->weight);
    }

    int version;
    at::Tensor mix_k, mix_r;
    torch::nn::Linear key{nullptr}, receptance{nullptr}, value{nullptr};
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
        head = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(c.n_embd, c.vocab_size).bias(false)));
    }
    torch::nn::Embedding emb{nullptr};
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm ln_out{nullptr};
    torch::nn::Linear head{nullptr};
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

    at::Tensor run(at::Tensor x, State& state, bool all_logits) {
        const int64_t B = x.size(0);
        AVIARY_CHECK(state.n_layer() == config.n_layer, "state has ", state.n_layer(), " layers, the model has ",
                     config.n_layer);
        AVIARY_CHECK(state.batch() == B, "state batch ", state.batch(), " does not match input batch ", B);
        for (int l = 0; l < config.n_layer; ++l) {
            auto* blk = net->blocks[l]->as<BlockImpl>();
            if (l == 0) x = layer_norm(x, blk->ln0);  // ln0 on the embedding, fp32
            at::Tensor a = layer_norm(x, blk->ln1);
            at::Tensor a_prev = shift(a, state.att_shift[l]);
            state.att_shift[l] = a.select(1, a.size(1) - 1);
            x = x + blk->att->forward(a, a_prev, state.wkv[l], options);
            at::Tensor b = layer_norm(x, blk->ln2);
            at::Tensor b_prev = shift(b, state.ffn_shift[l]);
            state.ffn_shift[l] = b.select(1, b.size(1) - 1);
            x = x + blk->ffn->forward(b, b_prev);
        }
        if (!all_logits) x = x.select(1, x.size(1) - 1);
        x = layer_norm(x, net->ln_out);
        return matmul_w(x, net->head->weight);
    }
};

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::load(const std::string& path, const ModelOptions& options) {
    return from_tensors(read_checkpoint(path), options);
}

Model Model::from_tensors(const TensorList& tensors, const ModelOptions& options) {
    AVIARY_CHECK(options.dtype == "fp32" || options.dtype == "bf16", "unknown weight dtype '", options.dtype,
                 "' (expected fp32 or bf16)");
    AVIARY_CHECK(options.device == "cpu" || options.device == "cuda", "unknown device '", options.device,
                 "' (expected cpu or cuda)");
    Model m;
    m.impl_->config = infer_config(tensors);
    m.impl_->options = options;
    if (options.device == "cuda") {
        AVIARY_CHECK(torch::cuda::is_available(), "--device cuda was asked for, but this build has no CUDA LibTorch "
                                                  "or no GPU is visible");
        m.impl_->device = torch::Device(torch::kCUDA);
    }
    m.impl_->net = Rwkv(m.impl_->config);
    torch::NoGradGuard no_grad;
    auto params = m.impl_->net->named_parameters(/*recurse=*/true);
    for (const auto& nt : tensors) {
        at::Tensor* p = params.find(nt.name);
        AVIARY_CHECK(p != nullptr, "internal: no parameter for key '", nt.name, "'");
        const auto dtype = (options.dtype == "bf16" && is_matrix_weight(nt.name)) ? at::kBFloat16 : at::kFloat;
        p->set_data(nt.tensor.to(dtype).contiguous());
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

State Model::new_state(int64_t batch) const {
    const auto& c = impl_->config;
    AVIARY_CHECK(batch >= 1, "state batch must be >= 1, got ", batch);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(impl_->device);
    State s;
    for (int l = 0; l < c.n_layer; ++l) {
        s.att_shift.push_back(torch::zeros({batch, c.n_embd}, f32));
        s.ffn_shift.push_back(torch::zeros({batch, c.n_embd}, f32));
        const auto& att = impl_->net->blocks[l]->as<BlockImpl>()->att;
        if (att->time_state.defined()) {
            // time_state is stored [value][key] (official kernels); the state here is [key][value] (spec §3.3).
            s.wkv.push_back(att->time_state.detach().transpose(1, 2).to(f32).unsqueeze(0).repeat({batch, 1, 1, 1}));
        } else {
            s.wkv.push_back(torch::zeros({batch, c.n_head, c.head_size, c.head_size}, f32));
        }
    }
    return s;
}

at::Tensor Model::embed(const at::Tensor& tokens) const {
    AVIARY_CHECK(tokens.dim() == 2, "tokens must be (B, T), got ", tokens.dim(), "-D");
    AVIARY_CHECK(tokens.size(1) >= 1, "empty token sequence");
    at::Tensor ids = tokens.to(impl_->device, at::kLong);
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    AVIARY_CHECK(lo >= 0 && hi < impl_->config.vocab_size, "token id ", (lo < 0 ? lo : hi),
                 " is out of range (vocabulary size ", impl_->config.vocab_size, ")");
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
