// Named official shapes and random weights (model_shapes.h).
#include "aviary/core/model_shapes.h"

#include <ATen/ATen.h>

#include "aviary/core/error.h"

namespace aviary {

ModelConfig named_shape(const std::string& name, int version) {
    AVIARY_CHECK(version == 5 || version == 6, "unknown model version ", version, " (expected 5 or 6)");
    ModelConfig c;
    c.version = version;
    if (name == "0.1b") {
        c.n_layer = 12, c.n_embd = 768;
    } else if (name == "0.4b") {
        c.n_layer = 24, c.n_embd = 1024;
    } else if (name == "1.5b" || name == "1.6b") {  // World 1.6B is the 1.5B shape (L24 D2048)
        c.n_layer = 24, c.n_embd = 2048;
    } else if (name == "3b") {
        c.n_layer = 32, c.n_embd = 2560;
    } else if (name == "7b") {
        c.n_layer = 32, c.n_embd = 4096;
    } else {
        AVIARY_FAIL("unknown shape '", name, "' (expected 0.1b, 0.4b, 1.5b, 1.6b, 3b or 7b)");
    }
    c.n_att = c.n_embd;
    c.head_size = 64;
    c.n_head = c.n_att / c.head_size;
    c.vocab_size = 65536;
    c.ffn_dim = static_cast<int>((c.n_embd * 7 / 2) / 32 * 32);  // int((D·3.5)//32·32), spec §7.1
    // LoRA ranks 32/64; D = 4096 uses 64/128, as the official x060 code and third-party loaders assume.
    if (version == 6) {
        c.mix_lora_rank = c.n_embd >= 4096 ? 64 : 32;
        c.decay_lora_rank = c.n_embd >= 4096 ? 128 : 64;
    }
    for (const auto& [name_, shape] : expected_shapes(c)) {
        int64_t n = 1;
        for (auto s : shape) n *= s;
        c.n_params += n;
    }
    return c;
}

TensorList random_weights(const ModelConfig& config, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    TensorList out;
    for (const auto& [name, shape] : expected_shapes(config)) {
        auto ends_with = [&n = name](const char* s) {
            const std::string suf(s);
            return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
        };
        at::Tensor t;
        if (ends_with("time_decay")) {
            t = at::rand(shape, gen) * 7.0 - 6.9;  // decay exp(−exp(w)) in about (0.3, 0.999)
        } else if (name.find("time_mix_") != std::string::npos || name.find("time_maa_") != std::string::npos) {
            if (ends_with("_w1") || ends_with("_w2"))
                t = at::randn(shape, gen) * 0.01;
            else
                t = at::rand(shape, gen);
        } else if (ends_with("time_decay_w1") || ends_with("time_decay_w2")) {
            t = at::randn(shape, gen) * 0.01;
        } else if (ends_with("time_faaaa")) {
            t = at::rand(shape, gen) * 2.0 - 1.0;
        } else if (ends_with("time_state")) {
            t = at::randn(shape, gen) * 0.1;
        } else if (shape.size() == 1) {  // norms: weight near 1, bias near 0
            t = ends_with(".weight") ? 1.0 + at::randn(shape, gen) * 0.1 : at::randn(shape, gen) * 0.1;
        } else if (name == "emb.weight") {
            t = at::randn(shape, gen);
        } else {  // (out, in) matrices
            t = at::randn(shape, gen) / std::sqrt(static_cast<double>(shape.back()));
        }
        out.push_back({name, t.to(at::kFloat).contiguous()});
    }
    return out;
}

void round_to_bf16_values(TensorList& tensors) {
    for (auto& nt : tensors) nt.tensor = nt.tensor.to(at::kBFloat16).to(at::kFloat);
}

}  // namespace aviary
