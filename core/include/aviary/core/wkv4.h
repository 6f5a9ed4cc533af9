// The WKV of RWKV-4 (the paper's baseline; RWKV-LM RWKV-v4neo cuda/wkv_cuda.cu and the official rwkv package's
// att_one/att_seq for version 4): a per-channel weighted average of past values with the numerically stable
// running-max state (aa, bb, pp). A per-timestep reference (the oracle, any float dtype) and a parallel form
// (masked log-space weights over all earlier positions, in blocks of query rows) that autograd differentiates.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

namespace aviary {

// Shapes (B batch, T time, C channels):
//   k, v  : (B, T, C)  computed in the dtype of k (fp32 in the model; fp64 in tests)
//   w     : (C)        log decay per step, = −exp(time_decay) < 0
//   u     : (C)        the bonus of the current token (time_first)
//   state : (B, 3, C)  rows aa, bb, pp: Σ e^{s_i−pp}·v_i, Σ e^{s_i−pp}, pp = max_i s_i; undefined = empty
//                      (aa = bb = 0, pp = −1e38)
// Output: y_t = (Σ_{i<t} e^{(t−1−i)·w + k_i}·v_i + e^{u + k_t}·v_t + e^{pp + t·w}·aa)
//             / (Σ_{i<t} e^{(t−1−i)·w + k_i} + e^{u + k_t} + e^{pp + t·w}·bb)
// Returns (y (B, T, C), final state (B, 3, C)).
std::pair<at::Tensor, at::Tensor> wkv4_reference(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                                 const at::Tensor& v, const at::Tensor& state);
std::pair<at::Tensor, at::Tensor> wkv4_parallel(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                                const at::Tensor& v, const at::Tensor& state, int64_t block = 64);
// The empty state (B, 3, C) in `options`' device, fp32.
at::Tensor wkv4_empty_state(int64_t batch, int64_t channels, const at::TensorOptions& options);

}  // namespace aviary
