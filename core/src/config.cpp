// ModelConfig inference from a state dict by key presence and tensor shapes (spec §1.2, §1.3, §1.6 and
// pitfall 8): RWKV-4 if att.time_first exists, v6 if att.time_maa_x exists, else v5.2 if ln_x + gate exist
// and time_decay is (H, N>1).
// Every key is validated against the official shape table; unknown keys are refused.
#include "aviary/core/config.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "aviary/core/error.h"

namespace aviary {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + ")";
}

const at::Tensor& require(const TensorList& tensors, const std::string& name, const char* why) {
    const at::Tensor* t = find_tensor(tensors, name);
    AVIARY_CHECK(t != nullptr, "missing tensor '", name, "' (", why, ")");
    return *t;
}

}  // namespace

bool is_matrix_weight(const std::string& name) {
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

std::string ModelConfig::to_json() const {
    nlohmann::ordered_json j;
    // a JSON number: 5.2 or 6 (DESIGN.md CLI contract)
    if (version == 4)
        j["version"] = 4;
    else if (version == 5)
        j["version"] = 5.2;
    else
        j["version"] = 6;
    j["n_layer"] = n_layer;
    j["n_embd"] = n_embd;
    j["n_head"] = n_head;
    j["head_size"] = head_size;
    j["vocab_size"] = vocab_size;
    j["ffn_dim"] = ffn_dim;
    j["n_params"] = n_params;
    j["n_att"] = n_att;
    if (version == 6) {
        j["mix_lora_rank"] = mix_lora_rank;
        j["decay_lora_rank"] = decay_lora_rank;
    }
    j["has_time_state"] = has_time_state;
    return j.dump();
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_shapes(const ModelConfig& c) {
    const int64_t D = c.n_embd, A = c.n_att, H = c.n_head, N = c.head_size, F = c.ffn_dim, V = c.vocab_size;
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    out.push_back({"emb.weight", {V, D}});
    for (int l = 0; l < c.n_layer; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        out.push_back({p + "ln1.weight", {D}});
        out.push_back({p + "ln1.bias", {D}});
        out.push_back({p + "ln2.weight", {D}});
        out.push_back({p + "ln2.bias", {D}});
        if (l == 0) {
            out.push_back({p + "ln0.weight", {D}});
            out.push_back({p + "ln0.bias", {D}});
        }
        if (c.version == 4) {  // RWKV-4 (v4neo): no gate, no ln_x, per-channel decay/bonus
            for (const char* m : {"k", "v", "r"}) out.push_back({p + "att.time_mix_" + m, {1, 1, D}});
            out.push_back({p + "att.time_decay", {A}});
            out.push_back({p + "att.time_first", {A}});
            out.push_back({p + "att.receptance.weight", {A, D}});
            out.push_back({p + "att.key.weight", {A, D}});
            out.push_back({p + "att.value.weight", {A, D}});
            out.push_back({p + "att.output.weight", {D, A}});
            out.push_back({p + "ffn.time_mix_k", {1, 1, D}});
            out.push_back({p + "ffn.time_mix_r", {1, 1, D}});
            out.push_back({p + "ffn.key.weight", {F, D}});
            out.push_back({p + "ffn.receptance.weight", {D, D}});
            out.push_back({p + "ffn.value.weight", {D, F}});
            continue;
        }
        if (c.version == 5) {
            for (const char* m : {"k", "v", "r", "g"}) out.push_back({p + "att.time_mix_" + m, {1, 1, D}});
            out.push_back({p + "att.time_decay", {H, N}});
            out.push_back({p + "att.time_faaaa", {H, N}});
        } else {
            for (const char* m : {"x", "w", "k", "v", "r", "g"}) out.push_back({p + "att.time_maa_" + m, {1, 1, D}});
            out.push_back({p + "att.time_maa_w1", {D, 5 * int64_t(c.mix_lora_rank)}});
            out.push_back({p + "att.time_maa_w2", {5, c.mix_lora_rank, D}});
            out.push_back({p + "att.time_decay", {1, 1, A}});
            out.push_back({p + "att.time_decay_w1", {D, c.decay_lora_rank}});
            out.push_back({p + "att.time_decay_w2", {c.decay_lora_rank, A}});
            out.push_back({p + "att.time_faaaa", {H, N}});
        }
        if (c.has_time_state) out.push_back({p + "att.time_state", {H, N, N}});
        out.push_back({p + "att.receptance.weight", {A, D}});
        out.push_back({p + "att.key.weight", {A, D}});
        out.push_back({p + "att.value.weight", {A, D}});
        out.push_back({p + "att.output.weight", {D, A}});
        out.push_back({p + "att.gate.weight", {A, D}});
        out.push_back({p + "att.ln_x.weight", {A}});
        out.push_back({p + "att.ln_x.bias", {A}});
        const char* mix = c.version == 6 ? "ffn.time_maa_" : "ffn.time_mix_";
        out.push_back({p + mix + "k", {1, 1, D}});
        out.push_back({p + mix + "r", {1, 1, D}});
        out.push_back({p + "ffn.key.weight", {F, D}});
        out.push_back({p + "ffn.receptance.weight", {D, D}});
        out.push_back({p + "ffn.value.weight", {D, F}});
    }
    out.push_back({"ln_out.weight", {D}});
    out.push_back({"ln_out.bias", {D}});
    out.push_back({"head.weight", {V, D}});
    return out;
}

ModelConfig infer_config(const TensorList& tensors) {
    AVIARY_CHECK(!tensors.empty(), "the checkpoint holds no tensors (expected an RWKV-4/5/6 state dict)");
    ModelConfig c;
    const at::Tensor& emb = require(tensors, "emb.weight", "token embedding (V, D)");
    AVIARY_CHECK(emb.dim() == 2, "emb.weight must be 2-D (V, D), got ", emb.dim(), "-D");
    c.vocab_size = static_cast<int>(emb.size(0));
    c.n_embd = static_cast<int>(emb.size(1));

    int max_block = -1;
    for (const auto& nt : tensors) {
        if (nt.name.rfind("blocks.", 0) != 0) continue;
        size_t dot = nt.name.find('.', 7);
        std::string idx = nt.name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        AVIARY_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos && idx.size() < 6,
                     "unexpected key '", nt.name, "' (expected blocks.<layer>.<name>)");
        max_block = std::max(max_block, std::stoi(idx));
    }
    AVIARY_CHECK(max_block >= 0, "no 'blocks.<layer>.' tensors found: not an RWKV state dict");
    c.n_layer = max_block + 1;

    const bool v6 = find_tensor(tensors, "blocks.0.att.time_maa_x") != nullptr;
    const at::Tensor& key = require(tensors, "blocks.0.att.key.weight", "attention key (A, D)");
    AVIARY_CHECK(key.dim() == 2, "blocks.0.att.key.weight must be 2-D (A, D)");
    c.n_att = static_cast<int>(key.size(0));
    if (find_tensor(tensors, "blocks.0.att.time_first") != nullptr) {
        // RWKV-4 (v4neo): per-channel decay and bonus, no heads; one "head" as wide as the attention, and a
        // (3, A) state per layer (aa, bb, pp).
        c.version = 4;
        const at::Tensor& first = require(tensors, "blocks.0.att.time_first", "bonus u (A)");
        AVIARY_CHECK(first.dim() == 1 && first.size(0) == c.n_att, "blocks.0.att.time_first must be (", c.n_att,
                     "), got ", shape_str(first.sizes().vec()));
        c.n_head = 1;
        c.head_size = c.n_att;
    } else {
        const at::Tensor& faaaa =
            require(tensors, "blocks.0.att.time_faaaa", "bonus u (H, N); RWKV-5.0/5.1 files are not supported");
        AVIARY_CHECK(faaaa.dim() == 2 && faaaa.size(0) > 0, "blocks.0.att.time_faaaa must be (H, N), got ",
                     shape_str(faaaa.sizes().vec()));
        c.n_head = static_cast<int>(faaaa.size(0));
        AVIARY_CHECK(c.n_att % c.n_head == 0, "attention width ", c.n_att, " is not a multiple of the head count ",
                     c.n_head);
        c.head_size = c.n_att / c.n_head;
        if (v6) {
            c.version = 6;
            const at::Tensor& w1 = require(tensors, "blocks.0.att.time_maa_w1", "mix LoRA down (D, 5*Lm)");
            AVIARY_CHECK(w1.dim() == 2 && w1.size(1) % 5 == 0 && w1.size(1) > 0,
                         "blocks.0.att.time_maa_w1 must be (D, 5*Lm), got ", shape_str(w1.sizes().vec()));
            c.mix_lora_rank = static_cast<int>(w1.size(1) / 5);
            const at::Tensor& d1 = require(tensors, "blocks.0.att.time_decay_w1", "decay LoRA down (D, Ld)");
            AVIARY_CHECK(d1.dim() == 2, "blocks.0.att.time_decay_w1 must be (D, Ld)");
            c.decay_lora_rank = static_cast<int>(d1.size(1));
        } else {
            const at::Tensor& decay = require(tensors, "blocks.0.att.time_decay", "decay (H, N)");
            const bool v52 = find_tensor(tensors, "blocks.0.att.ln_x.weight") &&
                             find_tensor(tensors, "blocks.0.att.gate.weight") && decay.dim() == 2 && decay.size(1) > 1;
            AVIARY_CHECK(v52,
                         "unsupported RWKV version: expected RWKV-4, v5.2 (x052) or v6 (x060) keys; RWKV-5.0/5.1 "
                         "are not supported");
            c.version = 5;
        }
    }
    const at::Tensor& fkey = require(tensors, "blocks.0.ffn.key.weight", "channel-mix key (F, D)");
    AVIARY_CHECK(fkey.dim() == 2, "blocks.0.ffn.key.weight must be 2-D (F, D)");
    c.ffn_dim = static_cast<int>(fkey.size(0));
    c.has_time_state = find_tensor(tensors, "blocks.0.att.time_state") != nullptr;

    // Validate every key and shape against the official table; refuse unknown keys.
    auto expected = expected_shapes(c);
    std::map<std::string, std::vector<int64_t>> want(expected.begin(), expected.end());
    std::set<std::string> seen;
    for (const auto& nt : tensors) {
        auto it = want.find(nt.name);
        AVIARY_CHECK(it != want.end(), "unknown key '", nt.name, "' for an RWKV-", c.version_string(),
                     " model (expected only the official ",
                     (c.version == 4   ? "RWKV-4"
                      : c.version == 5 ? "x052"
                                       : "x060"),
                     " keys)");
        AVIARY_CHECK(seen.insert(nt.name).second, "duplicate key '", nt.name, "'");
        AVIARY_CHECK(nt.tensor.sizes().vec() == it->second, "tensor '", nt.name, "' has shape ",
                     shape_str(nt.tensor.sizes().vec()), ", expected ", shape_str(it->second));
        AVIARY_CHECK(nt.tensor.is_floating_point(), "tensor '", nt.name, "' must be floating point");
        c.n_params += nt.tensor.numel();
    }
    for (const auto& [name, shape] : expected)
        AVIARY_CHECK(seen.count(name), "missing tensor '", name, "' with shape ", shape_str(shape));
    return c;
}

double sequence_flops_per_token(const ModelConfig& c) {
    auto ends_with = [](const std::string& s, const char* suffix) {
        const std::string x(suffix);
        return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    };
    double weights = 0;
    for (const auto& [name, shape] : expected_shapes(c)) {
        if (name.rfind("blocks.", 0) != 0) continue;  // emb, head, ln_out
        const bool matrix = shape.size() == 2 && ends_with(name, ".weight") &&
                            (name.find(".att.") != std::string::npos || name.find(".ffn.") != std::string::npos);
        const bool lora = ends_with(name, "_w1") || ends_with(name, "_w2");
        if (!matrix && !lora) continue;
        double n = 1;
        for (int64_t d : shape) n *= double(d);
        weights += n;
    }
    return 2.0 * weights + 4.0 * double(c.n_att) * double(c.head_size) * double(c.n_layer);
}

}  // namespace aviary
