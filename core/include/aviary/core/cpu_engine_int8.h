// int8 checkpoints for the CPU decode engine (`aviary convert --dtype int8`): the big matrices (the att/ffn
// Linear weights, head, emb) stored as int8 under their official names with one fp32 scale per output row in
// "<name>.int8_scale" (the engine's own scheme, quantize_rows_int8); everything else (norms, mixes, decay, LoRAs)
// stays as it was. Loading dequantises to fp32 for Model; an int8 CpuEngine built on that model re-derives exactly
// the stored codes (the largest |code| of a row is 127, so max|q·s|/127 = s).
#pragma once
#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"  // is_matrix_weight: the matrices quantised here

namespace aviary {

// Quantises every engine matrix of an official state dict (any floating dtype) to int8 + row scales.
TensorList quantize_checkpoint_int8(const TensorList& tensors);
// True when the list holds "<name>.int8_scale" keys (a quantize_checkpoint_int8 result).
bool is_int8_checkpoint(const TensorList& tensors);
// q·scale per row in fp32 for every int8 matrix; the scale keys are dropped. Throws aviary::Error naming the key
// when a scale is missing or has the wrong shape.
TensorList dequantize_checkpoint_int8(const TensorList& tensors);

}  // namespace aviary
