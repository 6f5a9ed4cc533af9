// Launchers of the CUDA WKV kernels (Eagle/Finch): sequence forward, backward without stored states, and a
// batched one-step decode. Recurrence of spec §2.5.1; grid layout of the official kernels (spec §4.1).
// Plain pointers only (no LibTorch types). Every launcher checks its preconditions and throws
// std::invalid_argument with a one-line message when one fails; otherwise it enqueues its kernels on `stream`
// and returns cudaGetLastError() (cudaSuccess when the launch went through).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace aviary::kernels {

// Layouts (all contiguous, row-major; B batch, T time, H heads, N head size in {32, 64, 128}):
//   r, k, v   : (B, T, H, N)  element type In (float or __nv_bfloat16)
//   lw        : (B, T, H, N)  fp32 log decay (≤ 0); decay w = exp(lw) multiplies the key index j
//   u         : (H, N)        fp32 bonus
//   s0, s_out : (B, H, N, N)  fp32 state S[key j][value i]; s0 may be nullptr (= zeros)
//   y         : (B, T, H, N)  fp32
// y_t[i] = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S_{t−1}[j][i]);  S_t[j][i] = exp(lw_t[j])·S_{t−1}[j][i] + k_t[j]·v_t[i]
template <typename In>
cudaError_t wkv_forward(const In* r, const In* k, const In* v, const float* lw, const float* u, const float* s0,
                        float* y, float* s_out, int B, int T, int H, int N, cudaStream_t stream);

// Backward of wkv_forward, recomputing states instead of storing them (three kernels on `stream`).
//   gy     : (B, T, H, N) fp32 upstream gradient of y
//   g_sout : (B, H, N, N) fp32 upstream gradient of the final state, nullptr = zeros
//   s_fin  : (B, H, N, N) fp32 final state returned by wkv_forward; needed only when g_sout != nullptr
// Outputs (fp32, every element written):
//   gr, gk, gv, glw : (B, T, H, N)
//   gu              : (B, H, N)     per batch item; the caller sums over B for the (H, N) gradient
//   gs0             : (B, H, N, N)  gradient of s0; nullptr = not wanted
template <typename In>
cudaError_t wkv_backward(const In* r, const In* k, const In* v, const float* lw, const float* u, const float* s0,
                         const float* s_fin, const float* gy, const float* g_sout, float* gr, float* gk, float* gv,
                         float* glw, float* gu, float* gs0, int B, int T, int H, int N, cudaStream_t stream);

// One recurrent step for a batch (inference). state (B, H, N, N) fp32 is read and updated in place;
// r, k, v : (B, H, N) element type In; lw : (B, H, N) fp32; u : (H, N) fp32; y : (B, H, N) fp32.
template <typename In>
cudaError_t wkv_decode(const In* r, const In* k, const In* v, const float* lw, const float* u, float* state, float* y,
                       int B, int H, int N, cudaStream_t stream);

}  // namespace aviary::kernels
