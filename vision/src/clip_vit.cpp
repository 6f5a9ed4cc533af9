// CLIP ViT forward and loading (spec A.12; HF modeling_clip CLIPVisionTransformer, OpenAI clip/model.py
// VisionTransformer). Parameters live in one map under their HF names (without "vision_model."), so a state dict
// round-trips; OpenAI keys are renamed on load (in_proj split into q, k, v in that order). A bf16 tower (a bf16 file
// kept in its precision) runs its matrix products in bf16 on oneDNN, as HF's model does under torch.bfloat16, but
// keeps the residual stream, the norms and the softmax in fp32.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>

#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "aviary/vision/clip_vit.h"

namespace aviary::vision {

struct ClipVision::Impl {
    ClipVisionConfig config;
    std::map<std::string, at::Tensor> p;  // HF names without "vision_model."
    at::ScalarType compute = at::kFloat;  // of the linear layers and the patch embedding: kFloat or kBFloat16

    const at::Tensor& get(const std::string& name) const {
        auto it = p.find(name);
        AVIARY_CHECK(it != p.end(), "CLIP vision weights lack '", name, "'");
        return it->second;
    }
    at::Tensor ln(const at::Tensor& x, const std::string& name) const {
        return at::layer_norm(x, {config.hidden}, get(name + ".weight"), get(name + ".bias"), config.ln_eps);
    }
    // y = x·Wᵀ + b in the weights' dtype (bf16: oneDNN, fp32 accumulation, a bf16 result); x must be in it.
    at::Tensor linear(const at::Tensor& x, const std::string& name) const {
        return at::linear(x, get(name + ".weight"), get(name + ".bias"));
    }
};

namespace {

std::vector<std::string> expected_names(const ClipVisionConfig& c) {
    std::vector<std::string> n = {"embeddings.class_embedding",
                                  "embeddings.patch_embedding.weight",
                                  "embeddings.position_embedding.weight",
                                  "pre_layrnorm.weight",
                                  "pre_layrnorm.bias",
                                  "post_layernorm.weight",
                                  "post_layernorm.bias"};
    for (int64_t i = 0; i < c.layers; ++i) {
        const std::string l = "encoder.layers." + std::to_string(i) + ".";
        for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                              "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"})
            for (const char* wb : {".weight", ".bias"}) n.push_back(l + s + wb);
    }
    return n;
}

// The vision tower's tensors under HF names (no prefix), from HF, VisualRWKV (vit.) or OpenAI (visual.) keys.
std::map<std::string, at::Tensor> vision_tensors(const TensorList& tensors) {
    std::map<std::string, at::Tensor> hf;
    for (const char* prefix : {"vit.vision_model.", "vision_model.", ""}) {
        const std::string pre = prefix;
        for (const auto& t : tensors) {
            if (t.name.compare(0, pre.size(), pre) != 0) continue;
            const std::string rest = t.name.substr(pre.size());
            if (rest.rfind("embeddings.", 0) == 0 || rest.rfind("encoder.layers.", 0) == 0 ||
                rest.rfind("pre_layrnorm.", 0) == 0 || rest.rfind("post_layernorm.", 0) == 0)
                hf[rest] = t.tensor;
        }
        if (!hf.empty()) return hf;
    }
    // OpenAI format
    static const std::regex kBlock(R"(visual\.transformer\.resblocks\.(\d+)\.(.+))");
    static const std::map<std::string, std::string> kSub = {{"attn.out_proj.weight", "self_attn.out_proj.weight"},
                                                            {"attn.out_proj.bias", "self_attn.out_proj.bias"},
                                                            {"ln_1.weight", "layer_norm1.weight"},
                                                            {"ln_1.bias", "layer_norm1.bias"},
                                                            {"ln_2.weight", "layer_norm2.weight"},
                                                            {"ln_2.bias", "layer_norm2.bias"},
                                                            {"mlp.c_fc.weight", "mlp.fc1.weight"},
                                                            {"mlp.c_fc.bias", "mlp.fc1.bias"},
                                                            {"mlp.c_proj.weight", "mlp.fc2.weight"},
                                                            {"mlp.c_proj.bias", "mlp.fc2.bias"}};
    for (const auto& t : tensors) {
        std::smatch m;
        if (t.name == "visual.conv1.weight")
            hf["embeddings.patch_embedding.weight"] = t.tensor;
        else if (t.name == "visual.class_embedding")
            hf["embeddings.class_embedding"] = t.tensor;
        else if (t.name == "visual.positional_embedding")
            hf["embeddings.position_embedding.weight"] = t.tensor;
        else if (t.name == "visual.ln_pre.weight")
            hf["pre_layrnorm.weight"] = t.tensor;
        else if (t.name == "visual.ln_pre.bias")
            hf["pre_layrnorm.bias"] = t.tensor;
        else if (t.name == "visual.ln_post.weight")
            hf["post_layernorm.weight"] = t.tensor;
        else if (t.name == "visual.ln_post.bias")
            hf["post_layernorm.bias"] = t.tensor;
        else if (std::regex_match(t.name, m, kBlock)) {
            const std::string l = "encoder.layers." + m[1].str() + ".", rest = m[2].str();
            if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
                const std::string wb = rest == "attn.in_proj_weight" ? ".weight" : ".bias";
                AVIARY_CHECK(t.tensor.size(0) % 3 == 0, "'", t.name, "' must stack q, k, v (rows divisible by 3)");
                auto qkv = t.tensor.chunk(3, 0);  // q, k, v in that order (nn.MultiheadAttention)
                hf[l + "self_attn.q_proj" + wb] = qkv[0];
                hf[l + "self_attn.k_proj" + wb] = qkv[1];
                hf[l + "self_attn.v_proj" + wb] = qkv[2];
            } else if (auto it = kSub.find(rest); it != kSub.end()) {
                hf[l + it->second] = t.tensor;
            } else {
                AVIARY_FAIL("unknown OpenAI CLIP key '", t.name, "'");
            }
        }
    }
    return hf;
}

// The tensors a bf16 tower keeps in bf16: the patch embedding and the linear layers (weights and biases).
bool is_bf16_tensor(const std::string& name) {
    return name == "embeddings.patch_embedding.weight" || name.find("_proj.") != std::string::npos ||
           name.find(".mlp.fc") != std::string::npos;
}

void init_normal(at::Tensor& t, double std, torch::Generator& gen) {
    t = at::normal(0.0, std, t.sizes(), gen).to(at::kFloat);
}

}  // namespace

ClipVision::ClipVision() : impl_(std::make_unique<Impl>()) {}
ClipVision::~ClipVision() = default;
ClipVision::ClipVision(ClipVision&&) noexcept = default;
ClipVision& ClipVision::operator=(ClipVision&&) noexcept = default;

bool ClipVision::contains_vision_tower(const TensorList& tensors) {
    return !vision_tensors(tensors).empty();
}

ClipVision ClipVision::create(const ClipVisionConfig& c, uint64_t seed) {
    AVIARY_CHECK(c.hidden % c.heads == 0, "CLIP width ", c.hidden, " is not divisible by ", c.heads, " heads");
    AVIARY_CHECK(c.image_size % c.patch == 0, "CLIP image size ", c.image_size, " is not a multiple of the patch ",
                 c.patch);
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    ClipVision v;
    v.impl_->config = c;
    const int64_t D = c.hidden, F = c.intermediate;
    // HF CLIPPreTrainedModel._init_weights with initializer_factor 1
    const double in_std = std::pow(double(D), -0.5) * std::pow(2.0 * c.layers, -0.5), out_std = std::pow(D, -0.5);
    auto& p = v.impl_->p;
    auto make = [&](const std::string& n, at::IntArrayRef shape, double std) {
        at::Tensor t = torch::empty(shape);
        init_normal(t, std, gen);
        p[n] = t;
    };
    make("embeddings.class_embedding", {D}, std::pow(D, -0.5));
    make("embeddings.patch_embedding.weight", {D, 3, c.patch, c.patch}, 0.02);
    make("embeddings.position_embedding.weight", {c.tokens(), D}, 0.02);
    for (const char* n : {"pre_layrnorm", "post_layernorm"}) {
        p[std::string(n) + ".weight"] = torch::ones({D});
        p[std::string(n) + ".bias"] = torch::zeros({D});
    }
    for (int64_t i = 0; i < c.layers; ++i) {
        const std::string l = "encoder.layers." + std::to_string(i) + ".";
        for (const char* s : {"q_proj", "k_proj", "v_proj"}) make(l + "self_attn." + s + ".weight", {D, D}, in_std);
        make(l + "self_attn.out_proj.weight", {D, D}, out_std);
        for (const char* s : {"q_proj", "k_proj", "v_proj", "out_proj"})
            p[l + "self_attn." + s + ".bias"] = torch::zeros({D});
        make(l + "mlp.fc1.weight", {F, D}, std::pow(2.0 * D, -0.5));
        make(l + "mlp.fc2.weight", {D, F}, in_std);
        p[l + "mlp.fc1.bias"] = torch::zeros({F});
        p[l + "mlp.fc2.bias"] = torch::zeros({D});
        for (const char* n : {"layer_norm1", "layer_norm2"}) {
            p[l + n + ".weight"] = torch::ones({D});
            p[l + n + ".bias"] = torch::zeros({D});
        }
    }
    return v;
}

ClipVision ClipVision::from_tensors(const TensorList& tensors, int64_t heads, const std::string& dtype) {
    AVIARY_CHECK(dtype == "fp32" || dtype == "bf16" || dtype == "auto", "unknown CLIP weight dtype '", dtype,
                 "' (expected fp32, bf16 or auto)");
    auto hf = vision_tensors(tensors);
    AVIARY_CHECK(!hf.empty(),
                 "no CLIP vision tower in these weights (expected keys 'vision_model.…', "
                 "'vit.vision_model.…' or 'visual.…')");
    hf.erase("embeddings.position_ids");  // a buffer in older HF files
    ClipVisionConfig c;
    auto need = [&](const std::string& n) -> const at::Tensor& {
        auto it = hf.find(n);
        AVIARY_CHECK(it != hf.end(), "CLIP vision weights lack '", n, "'");
        return it->second;
    };
    const auto& pe = need("embeddings.patch_embedding.weight");
    AVIARY_CHECK(pe.dim() == 4 && pe.size(1) == 3 && pe.size(2) == pe.size(3),
                 "'embeddings.patch_embedding.weight' must be (D, 3, p, p)");
    c.hidden = pe.size(0);
    c.patch = pe.size(2);
    const int64_t n_pos = need("embeddings.position_embedding.weight").size(0);
    const auto g = int64_t(std::llround(std::sqrt(double(n_pos - 1))));
    AVIARY_CHECK(g * g + 1 == n_pos, "position embedding has ", n_pos, " rows; expected grid² + 1");
    c.image_size = g * c.patch;
    c.layers = 0;
    while (hf.count("encoder.layers." + std::to_string(c.layers) + ".mlp.fc1.weight")) ++c.layers;
    AVIARY_CHECK(c.layers > 0, "CLIP vision weights have no encoder layers");
    c.intermediate = need("encoder.layers.0.mlp.fc1.weight").size(0);
    c.heads = heads > 0 ? heads : c.hidden / 64;
    AVIARY_CHECK(c.heads >= 1 && c.hidden % c.heads == 0, "CLIP width ", c.hidden, " is not divisible by ", c.heads,
                 " heads");
    const bool bf16 =
        dtype == "bf16" || (dtype == "auto" && need("encoder.layers.0.mlp.fc1.weight").scalar_type() == at::kBFloat16);
    ClipVision v;
    v.impl_->config = c;
    v.impl_->compute = bf16 ? at::kBFloat16 : at::kFloat;
    for (const auto& n : expected_names(c)) {
        at::Tensor t = need(n);
        // a bf16 file's matrices stay as read (no copy); everything else is converted once
        v.impl_->p[n] = t.to(bf16 && is_bf16_tensor(n) ? at::kBFloat16 : at::kFloat).contiguous();
    }
    for (const auto& [n, t] : hf)
        AVIARY_CHECK(v.impl_->p.count(n), "unexpected CLIP vision key '", n, "' (a layer beyond ", c.layers,
                     " or a different architecture)");
    // shapes
    const int64_t D = c.hidden, F = c.intermediate;
    for (const auto& [n, t] : v.impl_->p) {
        std::vector<int64_t> want;
        if (n == "embeddings.class_embedding" || n.find("norm") != std::string::npos ||
            n.find("bias") != std::string::npos)
            want = {n.find("fc1.bias") != std::string::npos ? F : D};
        else if (n.find("fc1.weight") != std::string::npos)
            want = {F, D};
        else if (n.find("fc2.weight") != std::string::npos)
            want = {D, F};
        else if (n.find("_proj.weight") != std::string::npos)
            want = {D, D};
        else if (n == "embeddings.position_embedding.weight")
            want = {n_pos, D};
        else
            continue;
        AVIARY_CHECK(t.sizes().vec() == want, "CLIP tensor '", n, "' has shape ", t.sizes(), ", expected ",
                     at::IntArrayRef(want));
    }
    return v;
}

ClipVision ClipVision::load(const std::string& path, int64_t heads, const std::string& dtype) {
    TensorList t = read_checkpoint(path);
    std::string act = "quick_gelu";
    const auto cfg = std::filesystem::path(path).parent_path() / "config.json";
    if (heads <= 0 && std::filesystem::exists(cfg)) {
        try {
            auto j = nlohmann::json::parse(std::ifstream(cfg));
            const auto& vc = j.contains("vision_config") ? j["vision_config"] : j;
            if (vc.contains("num_attention_heads")) heads = vc["num_attention_heads"].get<int64_t>();
            if (vc.contains("hidden_act")) act = vc["hidden_act"].get<std::string>();
        } catch (const nlohmann::json::exception& e) {
            AVIARY_FAIL("cannot read '", cfg.string(), "': ", e.what());
        }
    }
    ClipVision v = from_tensors(t, heads, dtype);
    AVIARY_CHECK(act == "quick_gelu" || act == "gelu", "'", cfg.string(), "' names activation '", act,
                 "' (expected quick_gelu or gelu)");
    v.impl_->config.act = act;
    return v;
}

const ClipVisionConfig& ClipVision::config() const {
    return impl_->config;
}
bool ClipVision::is_bf16() const {
    return impl_->compute == at::kBFloat16;
}

at::Tensor ClipVision::forward(const at::Tensor& pixels) const {
    const auto& c = impl_->config;
    const auto& I = *impl_;
    AVIARY_CHECK(
        pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == c.image_size && pixels.size(3) == c.image_size,
        "CLIP expects pixels (B, 3, ", c.image_size, ", ", c.image_size, "), got ", pixels.sizes());
    std::optional<torch::NoGradGuard> no_grad;
    if (!I.get("embeddings.class_embedding").requires_grad()) no_grad.emplace();
    // bf16 products go to oneDNN, which runs on LibTorch's intra-op pool (one thread outside this scope); fp32
    // products go to the BLAS, whose own pool set_thread_count() sized, so the fp32 path runs as it always has.
    std::optional<TorchThreadsScope> threads;
    if (I.compute == at::kBFloat16) threads.emplace();
    const at::ScalarType ct = I.compute;  // the matrix products' dtype; the residual stream x stays fp32
    const int64_t B = pixels.size(0), D = c.hidden, H = c.heads, N = D / H;
    // patch embeddings: conv k = s = patch, no bias -> (B, D, g, g) -> (B, P, D)
    at::Tensor x =
        at::conv2d(pixels.to(ct), I.get("embeddings.patch_embedding.weight"), {}, {c.patch, c.patch}).to(at::kFloat);
    x = x.flatten(2).transpose(1, 2);
    // [CLS; patches] + position embedding                                 // (B, 1 + P, D)
    at::Tensor cls = I.get("embeddings.class_embedding").view({1, 1, D}).expand({B, 1, D});
    x = at::cat({cls, x}, 1) + I.get("embeddings.position_embedding.weight").unsqueeze(0);
    x = I.ln(x, "pre_layrnorm");
    const int64_t T = x.size(1);
    const double scale = 1.0 / std::sqrt(double(N));
    for (int64_t i = 0; i < c.layers; ++i) {
        const std::string l = "encoder.layers." + std::to_string(i) + ".";
        // x += out_proj(softmax(q·kᵀ/√N)·v), q, k, v from LN1(x)
        at::Tensor h = I.ln(x, l + "layer_norm1").to(ct);
        at::Tensor q = (I.linear(h, l + "self_attn.q_proj") * scale).view({B, T, H, N}).transpose(1, 2);  // (B,H,T,N)
        at::Tensor k = I.linear(h, l + "self_attn.k_proj").view({B, T, H, N}).transpose(1, 2);
        at::Tensor v = I.linear(h, l + "self_attn.v_proj").view({B, T, H, N}).transpose(1, 2);
        at::Tensor a = at::softmax(at::matmul(q, k.transpose(2, 3)), -1, at::kFloat).to(ct);  // softmax in fp32
        at::Tensor o = at::matmul(a, v).transpose(1, 2).reshape({B, T, D});
        x = x + I.linear(o, l + "self_attn.out_proj").to(at::kFloat);
        // x += fc2(act(fc1(LN2(x)))), QuickGELU: z·σ(1.702 z), the activation in fp32
        at::Tensor z = I.linear(I.ln(x, l + "layer_norm2").to(ct), l + "mlp.fc1").to(at::kFloat);
        z = c.act == "gelu" ? at::gelu(z) : z * at::sigmoid(1.702 * z);
        x = x + I.linear(z.to(ct), l + "mlp.fc2").to(at::kFloat);
    }
    return x;
}

at::Tensor cls_last(const at::Tensor& hidden) {
    return at::cat({hidden.slice(1, 1), hidden.slice(1, 0, 1)}, 1);
}

at::Tensor ClipVision::features(const at::Tensor& pixels) const {
    return cls_last(forward(pixels));
}

TensorList ClipVision::state_dict() const {
    TensorList out;
    for (const auto& n : expected_names(impl_->config)) out.push_back({"vision_model." + n, impl_->p.at(n)});
    return out;
}

void ClipVision::train(bool on) {
    for (auto& [n, t] : impl_->p) t.set_requires_grad(on);
}

}  // namespace aviary::vision
