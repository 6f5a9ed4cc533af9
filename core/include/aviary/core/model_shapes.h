// Named official model shapes (LM README @524481d: 0.1B = L12 D768, 0.4B = L24 D1024, 1.5B = L24 D2048,
// 3B = L32 D2560; World vocabulary 65536; F = 3.5·D rounded down to 32; LoRA ranks 32/64) and seeded random
// weights of any config, for benchmarks and tests that need a model of a given shape.
#pragma once
#include <cstdint>
#include <string>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"

namespace aviary {

// "0.1b", "0.4b", "1.5b", "3b" with version 5 (meaning 5.2) or 6.
ModelConfig named_shape(const std::string& name, int version);

// Random weights with sane scales (matrices N(0, 1/√in), decays spread over (0.3, 0.999), norms near 1):
// not the official initialisation, but numerically well-behaved for timing and shape tests.
TensorList random_weights(const ModelConfig& config, uint64_t seed);

// Every tensor rounded to a bf16 value and kept in fp32, as an official bf16 checkpoint holds them once widened (an
// engine then lays them out as from such a file: its LoRAs read in bf16, cpu_engine_weights.cpp).
void round_to_bf16_values(TensorList& tensors);

}  // namespace aviary
