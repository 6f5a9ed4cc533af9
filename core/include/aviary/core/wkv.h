// The WKV operator of Eagle/Finch (spec §2.5), one dispatch over four implementations:
// a per-timestep reference (the oracle), a chunked form (matrix form of the recurrence, §2.5.3), fused CPU loops
// (forward and backward, the CPU default) and the CUDA kernels. All are differentiable (autograd) in r, k, v, log_w, u
// and the initial state.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace aviary {

enum class WkvImpl { Auto, Reference, Chunked, Cuda, Cpu };

const char* wkv_impl_name(WkvImpl impl);

// Shapes (B batch, T time, H heads, N head size):
//   r, k, v : (B, T, H, N)  any floating dtype; computed in fp32
//   log_w   : (B, T, H, N)  fp32, log of the decay (= -exp(w_raw) ≤ 0); broadcastable over B and T
//   u       : (H, N)        the bonus (time_faaaa)
//   state   : (B, H, N, N)  fp32, S[b][h][key j][value i]; may be undefined (= zeros)
// Recurrence: y_t[i] = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S[j][i]);  S[j][i] ← exp(log_w_t[j])·S[j][i] + k_t[j]·v_t[i]
// Returns (y (B, T, H, N) fp32, final state (B, H, N, N) fp32). Under the CPU autocast of bf16 training
// (trainer.h TrainPrecision) the inputs are widened and the whole recurrence runs in fp32 without autocast.
std::pair<at::Tensor, at::Tensor> wkv(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state,
                                      WkvImpl impl = WkvImpl::Auto, int64_t chunk = 32);

// The individual paths (the dispatch above picks one).
std::pair<at::Tensor, at::Tensor> wkv_reference(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                                const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state);
std::pair<at::Tensor, at::Tensor> wkv_chunked(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                              const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state,
                                              int64_t chunk);
// Fused loops per (sequence, head) on CPU tensors, with their own backward (states checkpointed every 16 tokens).
std::pair<at::Tensor, at::Tensor> wkv_cpu(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                          const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state);
// The fused loops are built per instruction set: the versions this CPU runs, narrowest first ("scalar", "baseline",
// then "avx2" and "avx512" where the CPU has them); by default wkv_cpu takes the widest whose lanes (1, 4, 8, 16)
// divide the head size. set_wkv_cpu_version forces one for the whole process, for tests and benchmarks ("" = the
// default; an unknown name throws aviary::Error); wkv_cpu_version_for says which one a head size gets.
std::vector<std::string> wkv_cpu_versions();
void set_wkv_cpu_version(const std::string& name);
std::string wkv_cpu_version_for(int64_t head_size);
// True when the CUDA path is compiled in and usable for these tensors (CUDA device, LibTorch with CUDA).
bool wkv_cuda_available();
std::pair<at::Tensor, at::Tensor> wkv_cuda(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state);

}  // namespace aviary
