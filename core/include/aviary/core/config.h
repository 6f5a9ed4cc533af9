// ModelConfig: the shape of an Eagle (v5.2, "x052") or Finch (v6, "x060") model, inferred from a state
// dict by key presence and tensor shapes (not by ChatRWKV's order-dependent loop; spec §1.6, pitfall 8).
#pragma once
#include <cstdint>
#include <string>

#include "aviary/core/checkpoint.h"

namespace aviary {

struct ModelConfig {
    int version = 6;          // 4 (RWKV-4 baseline), 5 (meaning 5.2) or 6
    int n_layer = 0;          // L
    int n_embd = 0;           // D
    int n_att = 0;            // A (= D in official models)
    int n_head = 0;           // H
    int head_size = 0;        // N = A / H
    int vocab_size = 0;       // V
    int ffn_dim = 0;          // F
    int mix_lora_rank = 0;    // Lm (v6 only): time_maa_w1.shape[1] / 5
    int decay_lora_rank = 0;  // Ld (v6 only): time_decay_w1.shape[1]
    bool has_time_state = false;
    int64_t n_params = 0;

    std::string version_string() const { return version == 4 ? "4" : version == 5 ? "5.2" : "6"; }
    // {"version": "5.2"|"6", "n_layer":…, "n_embd":…, "n_head":…, "head_size":…, "vocab_size":…,
    //  "ffn_dim":…, "n_params":…, …}
    std::string to_json() const;
};

// Infers the config and validates every expected key and shape; unknown keys and wrong shapes are errors
// that name the key and the expected shape.
ModelConfig infer_config(const TensorList& tensors);

// The official key set and shapes of a config (used for validation and for random initialisation).
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_shapes(const ModelConfig& config);

// True for the big matrices of a state dict: emb, head and the att/ffn Linear weights. They take the weight dtype
// (Model's bf16, the CPU engine's bf16 / int8 formats and int8 checkpoints); LoRAs, mixes, decay and norms stay fp32
// (spec §2.8).
bool is_matrix_weight(const std::string& name);

// Arithmetic of one token in sequence mode: 2 FLOPs per weight of every layer matrix and LoRA (the "….weight"
// matrices of att/ffn and the time_*_w1/_w2 LoRAs of expected_shapes; not the embedding, and not the head, which a
// prefill runs for the last token only) plus ~4 per WKV state element (n_att · head_size per layer). 0.1B RWKV-6:
// 194 641 920. The prefill compute floors of `aviary bench` and `vqa --stats` divide by it.
double sequence_flops_per_token(const ModelConfig& config);

}  // namespace aviary
