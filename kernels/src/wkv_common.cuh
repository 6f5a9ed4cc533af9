// Private helpers shared by the WKV kernels: element loads to fp32, precondition checks, head-size dispatch.
// Preconditions follow wkv.cuh (spec §4.1 layout: grid B·H blocks, N threads, N % 4 == 0).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace aviary::kernels::detail {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// Steps staged in shared memory per chunk (L·N = 1024 floats = 4 KiB per staged tensor): one global round trip
// per L steps instead of one per step, since a (batch, head) block has too few warps to hide load latency.
template <int N>
constexpr int kChunk = 1024 / N;

// Stages steps [t0, t0 + len) of one (B, T, H, N) tensor into dst[q][x]: thread x loads column x of each step.
// off0 is the element offset of (b, t0, h, x) and step the stride of t (H·N). Reverse scans walk q downwards.
template <int L, int N, typename In>
__device__ __forceinline__ void stage(float (&dst)[L][N], const In* __restrict__ src, size_t off0, size_t step,
                                      int len, int x) {
#pragma unroll
    for (int q = 0; q < L; ++q)
        if (q < len) dst[q][x] = to_float(src[off0 + q * step]);
}

// As stage, storing the decay w = exp(lw) of a log-decay tensor.
template <int L, int N>
__device__ __forceinline__ void stage_exp(float (&dst)[L][N], const float* __restrict__ src, size_t off0, size_t step,
                                          int len, int x) {
#pragma unroll
    for (int q = 0; q < L; ++q)
        if (q < len) dst[q][x] = __expf(src[off0 + q * step]);
}

// Throws std::invalid_argument("<op>: <what>") — one line naming the launcher and the bad value.
inline void require(bool ok, const char* op, const std::string& what) {
    if (!ok) throw std::invalid_argument(std::string(op) + ": " + what);
}

inline void require_ptr(const void* p, const char* op, const char* name) {
    require(p != nullptr, op, std::string("pointer '") + name + "' must not be null");
}

inline void require_dims(const char* op, int B, int T, int H, int N) {
    require(B > 0 && T > 0 && H > 0, op,
            "B, T, H must be positive (got B=" + std::to_string(B) + " T=" + std::to_string(T) +
                " H=" + std::to_string(H) + ")");
    require(N == 32 || N == 64 || N == 128, op, "head size N must be 32, 64 or 128 (got " + std::to_string(N) + ")");
}

// Calls f(std::integral_constant<int, N>{}) for the compiled head sizes (N checked by require_dims first).
template <typename F>
void dispatch_head_size(int N, F&& f) {
    switch (N) {
        case 32: f(std::integral_constant<int, 32>{}); break;
        case 64: f(std::integral_constant<int, 64>{}); break;
        default: f(std::integral_constant<int, 128>{}); break;
    }
}

}  // namespace aviary::kernels::detail
