// Q-Shift of Vision-RWKV / AudioRWKV (../shared/reference/multimodal_spec.md B.1, E.7): tokens (B, N = Hg·Wg, C) on a
// patch grid, per head (VRWKV6 `q_shift_multihead`) the channel quarters take the value of the left (w−1), right
// (w+1), upper (h−1) and lower (h+1) neighbour; borders get zeros; leftover channels (C/heads not divisible by 4)
// are copied. For spectrograms h = time patches and w = mel patches.
#pragma once
#include <ATen/core/Tensor.h>

namespace aviary::audio {

// x (B, Hg·Wg, C), C divisible by n_head. Differentiable (slicing and padding).
at::Tensor q_shift(const at::Tensor& x, int64_t grid_h, int64_t grid_w, int64_t n_head);
// The same by explicit per-element loops (the oracle; float64 inside, no autograd).
at::Tensor q_shift_reference(const at::Tensor& x, int64_t grid_h, int64_t grid_w, int64_t n_head);

}  // namespace aviary::audio
