// The Model's private state (model.h pimpl) and its LibTorch modules below the time-mix: channel mix, block, the
// whole network, with the official parameter names (LM RWKV-v5/src/model.py @86affd7). Shared by model.cpp (loading,
// sequence/RNN forward, state) and model_lora.cpp (LoRA, state tuning). Private to core/src.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include <memory>
#include <string>

#include "aviary/core/model.h"
#include "aviary/core/relu_square.h"
#include "model_layers.h"
#include "time_mix.h"

namespace aviary {
namespace model_internal {

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
        // v4/v5: weight on the current token; v6: weight on the previous-minus-current difference
        const auto x = mix_lerp(b, prev, {mix_k, mix_r}, version != 6 ? MixForm::CurrentWeighted : MixForm::Difference);
        const at::Tensor &xk = x[0], &xr = x[1];
        // κ = relu(W_k x_k)²; out = σ(W_r x_r) ⊙ (W_v κ)   (spec §2.6)
        const at::Tensor kk = relu_square(matmul_w(xk, key));
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
        att = register_module("att", make_time_mix(c, c.has_time_state));
        ffn = register_module("ffn", ChannelMix(c));
    }
    torch::nn::LayerNorm ln0{nullptr}, ln1{nullptr}, ln2{nullptr};
    std::shared_ptr<TimeMixImpl> att;
    ChannelMix ffn{nullptr};
};
TORCH_MODULE(Block);

struct RwkvImpl : torch::nn::Module {
    explicit RwkvImpl(const ModelConfig& c) {
        emb = register_module("emb", torch::nn::Embedding(c.vocab_size, c.n_embd));
        blocks = register_module("blocks", torch::nn::ModuleList());
        for (int l = 0; l < c.n_layer; ++l) blocks->push_back(Block(c, l));
        ln_out =
            register_module("ln_out", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd}).eps(kLayerNormEps)));
        head = register_module("head", Matrix(c.n_embd, c.vocab_size));
    }
    torch::nn::Embedding emb{nullptr};
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm ln_out{nullptr};
    Matrix head{nullptr};
};
TORCH_MODULE(Rwkv);

}  // namespace model_internal

struct Model::Impl {
    ModelConfig config;
    ModelOptions options;
    model_internal::Rwkv net{nullptr};
    torch::Device device{torch::kCPU};
    bool training = false;
    bool has_lora = false;                // add_lora() was called (and merge_lora() not yet)
    std::shared_ptr<void> derived_cache;  // Model::derived_cache()
    LoraOptions lora;

    // Embeddings x (B, T, D) through every block (model.cpp).
    at::Tensor run(at::Tensor x, State& state, bool all_logits, const Model::BlockHook* hook = nullptr);
};

}  // namespace aviary
