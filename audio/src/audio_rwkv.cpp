// AudioRWKV model (../shared/reference/multimodal_spec.md B.2; blocks as VRWKV6 in B.1): BatchNorm over mel bins,
// patch embedding of the (time × mel) image, learned position embedding, VRWKV6 blocks (Q-Shift + Finch
// data-dependent lerps and decay + bidirectional WKV + GroupNorm ln_x + SiLU gate; channel mix with Q-Shift),
// LayerNorm, mean over patches, Linear to 527 logits. Finch initialisation (RWKV-LM v6 `RWKV_Tmix_x060`).
#include "aviary/audio/audio_rwkv.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "aviary/audio/bi_wkv.h"
#include "aviary/audio/q_shift.h"
#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"

namespace aviary::audio {

// ---- config ----
AudioRwkvConfig AudioRwkvConfig::tiny(double clip_seconds) {
    AudioRwkvConfig c;
    c.clip_seconds = clip_seconds;
    return c;
}
AudioRwkvConfig AudioRwkvConfig::small(double clip_seconds) {
    AudioRwkvConfig c;
    c.n_embd = 384;
    c.n_head = 6;
    c.clip_seconds = clip_seconds;
    return c;
}
int64_t AudioRwkvConfig::clip_samples() const {
    return int64_t(std::llround(clip_seconds * sample_rate));
}
int64_t AudioRwkvConfig::frames() const {
    return 1 + clip_samples() / hop;
}
int64_t AudioRwkvConfig::grid_t() const {
    return frames() / patch;
}
int64_t AudioRwkvConfig::grid_f() const {
    return n_mels / patch;
}

void AudioRwkvConfig::validate() const {
    AVIARY_CHECK(n_embd > 0 && n_head > 0 && n_embd % n_head == 0, "AudioRWKV: n_embd ", n_embd,
                 " must be a positive multiple of n_head ", n_head);
    AVIARY_CHECK(n_layer > 0, "AudioRWKV: n_layer must be positive, got ", n_layer);
    AVIARY_CHECK(patch > 0 && n_mels % patch == 0, "AudioRWKV: patch ", patch, " must divide n_mels ", n_mels);
    AVIARY_CHECK(clip_seconds > 0 && grid_t() >= 1, "AudioRWKV: clip of ", clip_seconds, " s gives ", frames(),
                 " frames, fewer than one patch of ", patch);
    AVIARY_CHECK(n_classes > 0 && sample_rate > 0 && hop > 0, "AudioRWKV: bad classes/rate/hop");
}

std::string AudioRwkvConfig::to_json() const {
    nlohmann::json j = {
        {"n_embd", n_embd},       {"n_layer", n_layer},         {"n_head", n_head},     {"patch", patch},
        {"n_mels", n_mels},       {"sample_rate", sample_rate}, {"hop", hop},           {"clip_seconds", clip_seconds},
        {"n_classes", n_classes}, {"ffn_mult", ffn_mult},       {"lora_mix", lora_mix}, {"lora_decay", lora_decay}};
    return j.dump();
}

AudioRwkvConfig AudioRwkvConfig::from_json(const std::string& text) {
    AudioRwkvConfig c;
    try {
        auto j = nlohmann::json::parse(text);
        c.n_embd = j.at("n_embd");
        c.n_layer = j.at("n_layer");
        c.n_head = j.at("n_head");
        c.patch = j.at("patch");
        c.n_mels = j.at("n_mels");
        c.sample_rate = j.at("sample_rate");
        c.hop = j.at("hop");
        c.clip_seconds = j.at("clip_seconds");
        c.n_classes = j.at("n_classes");
        c.ffn_mult = j.at("ffn_mult");
        c.lora_mix = j.at("lora_mix");
        c.lora_decay = j.at("lora_decay");
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL("AudioRWKV config JSON is invalid: ", e.what());
    }
    c.validate();
    return c;
}

// ---- modules ----
namespace {

using torch::indexing::Slice;
constexpr double kHeadBiasInit = -4.0;

struct SpatialMixImpl : torch::nn::Module {  // VRWKV6 "att"
    int64_t C, H, N, L, Ld;
    torch::Tensor time_maa_x, time_maa_w, time_maa_k, time_maa_v, time_maa_r, time_maa_g;
    torch::Tensor time_maa_w1, time_maa_w2, time_decay, time_decay_w1, time_decay_w2, time_faaaa;
    torch::nn::Linear receptance{nullptr}, key{nullptr}, value{nullptr}, gate{nullptr}, output{nullptr};
    torch::nn::GroupNorm ln_x{nullptr};

    SpatialMixImpl(const AudioRwkvConfig& c, int64_t layer)
        : C(c.n_embd), H(c.n_head), N(c.n_embd / c.n_head), L(c.lora_mix), Ld(c.lora_decay) {
        const double r0 = c.n_layer > 1 ? double(layer) / double(c.n_layer - 1) : 0.0;  // ratio_0_to_1
        const double r1 = 1.0 - double(layer) / double(c.n_layer);                      // ratio_1_to_almost0
        auto ddd = torch::arange(C, torch::kDouble) / double(C);
        time_maa_x = register_parameter("time_maa_x", (1.0 - ddd.pow(r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_w = register_parameter("time_maa_w", (1.0 - ddd.pow(r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_k = register_parameter("time_maa_k", (1.0 - ddd.pow(r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_v =
            register_parameter("time_maa_v", (1.0 - (ddd.pow(r1) + 0.3 * r0)).to(torch::kFloat).view({1, 1, C}));
        time_maa_r = register_parameter("time_maa_r", (1.0 - ddd.pow(0.5 * r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_g = register_parameter("time_maa_g", (1.0 - ddd.pow(0.5 * r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_w1 = register_parameter("time_maa_w1", torch::zeros({C, 5 * L}));
        time_maa_w2 = register_parameter("time_maa_w2", torch::empty({5, L, C}).uniform_(-0.01, 0.01));
        auto n = torch::arange(C, torch::kDouble) / double(std::max<int64_t>(C - 1, 1));
        // decay_speed[n] = −6 + 5·(n/(C−1))^(0.7 + 1.3·ratio_0_to_1)
        time_decay =
            register_parameter("time_decay", (-6.0 + 5.0 * n.pow(0.7 + 1.3 * r0)).to(torch::kFloat).view({1, 1, C}));
        time_decay_w1 = register_parameter("time_decay_w1", torch::zeros({C, Ld}));
        time_decay_w2 = register_parameter("time_decay_w2", torch::empty({Ld, C}).uniform_(-0.01, 0.01));
        // time_faaaa[n] = ratio_0_to_1·(1 − n/(C−1)) + ((n+1) % 3 − 1)·0.1
        auto zigzag = (torch::arange(C, torch::kLong) + 1).remainder(3).to(torch::kDouble) - 1.0;
        time_faaaa = register_parameter("time_faaaa", (r0 * (1.0 - n) + zigzag * 0.1).to(torch::kFloat).view({H, N}));
        auto lin = [&](const char* name, int64_t in, int64_t out) {
            return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)));
        };
        receptance = lin("receptance", C, C);
        key = lin("key", C, C);
        value = lin("value", C, C);
        gate = lin("gate", C, C);
        output = lin("output", C, C);
        {
            torch::NoGradGuard g;
            output->weight.zero_();
        }
        ln_x = register_module("ln_x", torch::nn::GroupNorm(torch::nn::GroupNormOptions(H, C).eps(1e-5)));
    }

    torch::Tensor forward(const torch::Tensor& x, int64_t gh, int64_t gw) {  // x (B, T, C)
        const int64_t B = x.size(0), T = x.size(1);
        auto xx = q_shift(x, gh, gw, H) - x;                                                     // X† − x
        auto xxx = x + xx * time_maa_x;                                                          // (B, T, C)
        xxx = torch::tanh(torch::matmul(xxx, time_maa_w1)).view({B * T, 5, L}).transpose(0, 1);  // (5, BT, L)
        xxx = torch::bmm(xxx, time_maa_w2).view({5, B, T, C});  // LoRA_* for w, k, v, r, g
        auto xw = x + xx * (time_maa_w + xxx[0]);               // x_* = x + xx⊙(μ_* + LoRA_*(x + xx⊙μ_x))
        auto xk = x + xx * (time_maa_k + xxx[1]);
        auto xv = x + xx * (time_maa_v + xxx[2]);
        auto xr = x + xx * (time_maa_r + xxx[3]);
        auto xg = x + xx * (time_maa_g + xxx[4]);
        auto r = receptance(xr).view({B, T, H, N});
        auto k = key(xk).view({B, T, H, N});
        auto v = value(xv).view({B, T, H, N});
        auto g = torch::silu(gate(xg));
        // w = time_decay + tanh(x_w W1) W2;  log decay = −exp(w)
        auto w = time_decay + torch::matmul(torch::tanh(torch::matmul(xw, time_decay_w1)), time_decay_w2);
        auto log_w = -torch::exp(w.to(torch::kFloat)).view({B, T, H, N});
        auto y = bi_wkv(r, k, v, log_w, time_faaaa).reshape({B * T, C});  // (B, T, H, N) -> (BT, C)
        y = ln_x(y).view({B, T, C});
        return output(y * g);
    }
};
TORCH_MODULE(SpatialMix);

struct ChannelMixImpl : torch::nn::Module {  // VRWKV6 "ffn"
    int64_t H;
    torch::Tensor time_maa_k, time_maa_r;
    torch::nn::Linear key{nullptr}, receptance{nullptr}, value{nullptr};
    ChannelMixImpl(const AudioRwkvConfig& c, int64_t layer) : H(c.n_head) {
        const int64_t C = c.n_embd, F = c.ffn_mult * c.n_embd;
        const double r1 = 1.0 - double(layer) / double(c.n_layer);
        auto ddd = torch::arange(C, torch::kDouble) / double(C);
        time_maa_k = register_parameter("time_maa_k", (1.0 - ddd.pow(r1)).to(torch::kFloat).view({1, 1, C}));
        time_maa_r = register_parameter("time_maa_r", (1.0 - ddd.pow(r1)).to(torch::kFloat).view({1, 1, C}));
        key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(C, F).bias(false)));
        receptance = register_module("receptance", torch::nn::Linear(torch::nn::LinearOptions(C, C).bias(false)));
        value = register_module("value", torch::nn::Linear(torch::nn::LinearOptions(F, C).bias(false)));
        torch::NoGradGuard g;
        value->weight.zero_();
    }
    torch::Tensor forward(const torch::Tensor& x, int64_t gh, int64_t gw) {
        auto xx = q_shift(x, gh, gw, H) - x;
        auto xk = x + xx * time_maa_k, xr = x + xx * time_maa_r;
        auto k = torch::relu(key(xk)).square();            // relu(K x_k)²
        return torch::sigmoid(receptance(xr)) * value(k);  // σ(R x_r) ⊙ V·relu(K x_k)²
    }
};
TORCH_MODULE(ChannelMix);

struct BlockImpl : torch::nn::Module {
    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    SpatialMix att{nullptr};
    ChannelMix ffn{nullptr};
    BlockImpl(const AudioRwkvConfig& c, int64_t layer) {
        ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd})));
        ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd})));
        att = register_module("att", SpatialMix(c, layer));
        ffn = register_module("ffn", ChannelMix(c, layer));
    }
    torch::Tensor forward(torch::Tensor x, int64_t gh, int64_t gw) {
        x = x + att(ln1(x), gh, gw);  // pre-norm
        return x + ffn(ln2(x), gh, gw);
    }
};
TORCH_MODULE(Block);

struct NetImpl : torch::nn::Module {
    AudioRwkvConfig c;
    torch::nn::BatchNorm1d bn0{nullptr};
    torch::nn::Conv2d patch_proj{nullptr};
    torch::nn::LayerNorm patch_norm{nullptr}, ln0{nullptr}, ln_out{nullptr};
    torch::Tensor pos_embed;
    torch::nn::ModuleList blocks;
    torch::nn::Linear head{nullptr};
    explicit NetImpl(const AudioRwkvConfig& cfg) : c(cfg) {
        const int64_t D = c.n_embd;
        bn0 = register_module("bn0", torch::nn::BatchNorm1d(c.n_mels));
        auto pe = std::make_shared<torch::nn::Module>();
        patch_proj =
            pe->register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, D, c.patch).stride(c.patch)));
        patch_norm = pe->register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
        register_module("patch_embed", pe);
        pos_embed = register_parameter("pos_embed", torch::randn({1, c.grid_t() * c.grid_f(), D}) * 0.02);
        ln0 = register_module("ln0", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
        for (int64_t i = 0; i < c.n_layer; ++i) blocks->push_back(Block(c, i));
        register_module("blocks", blocks);
        ln_out = register_module("ln_out", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
        head = register_module("head", torch::nn::Linear(D, c.n_classes));
        // Prior-probability bias (σ(−4) ≈ 0.018): tags are rare, so the first steps need not spend themselves on
        // pushing the ~500 absent classes down (a common detection/tagging initialisation; not from the paper).
        torch::NoGradGuard g;
        head->bias.fill_(kHeadBiasInit);
    }
    torch::Tensor normalise(const torch::Tensor& logmel) {  // (B, F, M): BatchNorm over the M mel bins
        AVIARY_CHECK(logmel.dim() == 3 && logmel.size(2) == c.n_mels, "AudioRWKV: expected log-mel (B, frames, ",
                     c.n_mels, "), got ", logmel.sizes());
        return bn0(logmel.transpose(1, 2)).transpose(1, 2);
    }
    torch::Tensor forward(const torch::Tensor& x) {
        const int64_t gt = c.grid_t(), gf = c.grid_f(), p = c.patch;
        AVIARY_CHECK(x.dim() == 3 && x.size(2) == c.n_mels && x.size(1) >= gt * p,
                     "AudioRWKV: expected (B, >= ", gt * p, ", ", c.n_mels, ") frames × mels, got ", x.sizes());
        auto img = x.slice(1, 0, gt * p).unsqueeze(1);        // (B, 1, time, mel); trailing frames dropped
        auto t = patch_proj(img).flatten(2).transpose(1, 2);  // (B, gt·gf, D), row = time, column = mel
        t = patch_norm(t) + pos_embed;
        t = ln0(t);
        for (const auto& m : *blocks) t = m->as<Block>()->forward(t, gt, gf);
        auto pooled = ln_out(t).mean(1);  // LayerNorm, then mean over patches
        return head(pooled);              // logits (B, 527)
    }
};
TORCH_MODULE(Net);

}  // namespace

struct AudioRwkv::Impl {
    AudioRwkvConfig config;
    std::vector<ClassLabel> labels;
    Net net{nullptr};
};

AudioRwkv::AudioRwkv(const AudioRwkvConfig& config, const std::vector<ClassLabel>& labels, uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
    config.validate();
    AVIARY_CHECK(int64_t(labels.size()) == config.n_classes, "AudioRWKV: ", labels.size(), " labels for ",
                 config.n_classes, " classes");
    impl_->config = config;
    impl_->labels = labels;
    torch::manual_seed(seed);
    impl_->net = Net(config);
    impl_->net->eval();
}
AudioRwkv::~AudioRwkv() = default;
AudioRwkv::AudioRwkv(AudioRwkv&&) noexcept = default;
AudioRwkv& AudioRwkv::operator=(AudioRwkv&&) noexcept = default;

const AudioRwkvConfig& AudioRwkv::config() const {
    return impl_->config;
}
const std::vector<ClassLabel>& AudioRwkv::labels() const {
    return impl_->labels;
}
at::Tensor AudioRwkv::normalise(const at::Tensor& logmel) {
    return impl_->net->normalise(logmel);
}
at::Tensor AudioRwkv::forward_normalised(const at::Tensor& x) {
    return impl_->net->forward(x);
}
void AudioRwkv::set_training(bool on) {
    impl_->net->train(on);
}

TensorList AudioRwkv::named_parameters() const {
    TensorList out;
    for (const auto& p : impl_->net->named_parameters(true)) out.push_back({p.key(), p.value()});
    return out;
}
TensorList AudioRwkv::named_buffers() const {
    TensorList out;
    for (const auto& p : impl_->net->named_buffers(true)) out.push_back({p.key(), p.value()});
    return out;
}
TensorList AudioRwkv::state_dict() const {
    TensorList out = named_parameters();
    for (auto& b : named_buffers()) out.push_back(b);
    return out;
}
int64_t AudioRwkv::parameter_count() const {
    int64_t n = 0;
    for (const auto& p : named_parameters()) n += p.tensor.numel();
    return n;
}

void AudioRwkv::load_state_dict(const TensorList& tensors) {
    TensorList mine = state_dict();
    AVIARY_CHECK(tensors.size() == mine.size(), "AudioRWKV checkpoint has ", tensors.size(), " tensors, the model ",
                 mine.size());
    torch::NoGradGuard g;
    for (auto& m : mine) {
        const at::Tensor* t = find_tensor(tensors, m.name);
        AVIARY_CHECK(t != nullptr, "AudioRWKV checkpoint lacks '", m.name, "'");
        AVIARY_CHECK(t->sizes() == m.tensor.sizes(), "AudioRWKV checkpoint tensor '", m.name, "' has shape ",
                     t->sizes(), ", the model expects ", m.tensor.sizes());
        m.tensor.copy_(t->to(m.tensor.scalar_type()));
    }
}

AudioRwkv AudioRwkv::load(const std::string& path) {
    Metadata meta;
    TensorList tensors = read_checkpoint(path, &meta);  // by content: a .pth gets the zip reader's errors, not JSON's
    auto c = meta.find("aviary.audio.config"), l = meta.find("aviary.audio.labels");
    AVIARY_CHECK(c != meta.end() && l != meta.end(), "'", path,
                 "' is not an AudioRWKV model: expected a .safetensors file written by `aviary train audio` (with "
                 "aviary.audio.config/labels metadata)");
    AudioRwkvConfig config = AudioRwkvConfig::from_json(c->second);
    std::vector<ClassLabel> labels;
    try {
        for (const auto& e : nlohmann::json::parse(l->second)) labels.push_back({e.at(0), e.at(1)});
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL("'", path, "': label metadata is invalid: ", e.what());
    }
    AudioRwkv model(config, labels, 0);
    model.load_state_dict(tensors);
    return model;
}

Metadata AudioRwkv::file_metadata() const {
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& l : impl_->labels) labels.push_back({l.mid, l.name});
    return {{"aviary.audio.config", impl_->config.to_json()},
            {"aviary.audio.labels", labels.dump()},
            {"format", "aviary-audio-rwkv"}};
}

void AudioRwkv::save(const std::string& path, const std::string& dtype) const {
    TensorList sd;
    for (auto& t : state_dict()) sd.push_back({t.name, t.tensor.detach()});
    // BatchNorm's counter stays int64; floating tensors follow dtype
    write_safetensors(path, convert_dtype(sd, dtype), file_metadata());
}

}  // namespace aviary::audio
