// From-scratch initialisation of Eagle (v5.2) / Finch (v6) models exactly as
// the official trainer does it (spec §7.1–7.3: LM RWKV-v5/src/model.py
// @86affd7, layer-dependent mixes/decays, `generate_init_weight` orthogonal
// matrices with the listed gains, emb U(±1e-4), ln_x weight ((1+l)/L)^0.7).
#pragma once
#include <cstdint>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"

namespace aviary {

// The official shape for (L, D, version, V): head size 64, A = D, F =
// int(3.5·D)//32·32, LoRA ranks 32/64. Throws when D is not a multiple of 64 or
// L < 2 (the official init divides by L − 1).
ModelConfig init_config(int n_layer, int n_embd, int version, int vocab_size);

// Official initial weights for `config` (every key of expected_shapes(config)),
// seeded; fp32.
TensorList init_weights(const ModelConfig& config, uint64_t seed);

}  // namespace aviary
