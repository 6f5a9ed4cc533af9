// Private helpers shared by the WKV kernels: element loads to fp32, precondition checks, head-size dispatch.
// Preconditions follow wkv.cuh (spec §4.1 layout: grid B·H blocks, N % 16 == 0).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace aviary::kernels::detail {

__device__ __forceinline__ float to_float(float x) {
    return x;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
    return __bfloat162float(x);
}

// Steps staged in shared memory per chunk (L·N = 1024 floats = 4 KiB per staged tensor): one global round trip
// per L steps instead of one per step.
template <int N>
constexpr int kChunk = 1024 / N;

// Each N-long dot product / state row is split over kSplit adjacent lanes of a warp (block = N·kSplit threads):
// a (batch, head) block of only N threads issues too many dependent instructions per warp per step.
constexpr int kSplit = 4;

// Σ over the kSplit adjacent lanes of a group; every lane of the group gets the same (bitwise) result.
__device__ __forceinline__ float group_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}

// Stages steps [t0, t0 + len) of one (B, T, H, N) tensor into dst[q][x], all kThreads threads loading
// consecutive elements. head0 is the element offset of (b, 0, h, 0) and step the stride of t (H·N).
template <int L, int N, int kThreads, typename In>
__device__ __forceinline__ void stage(float (&dst)[L][N], const In* __restrict__ src, size_t head0, size_t step, int t0,
                                      int len, int tid) {
#pragma unroll
    for (int it = 0; it < L * N / kThreads; ++it) {
        const int e = tid + it * kThreads, q = e / N, x = e % N;
        if (q < len) dst[q][x] = to_float(src[head0 + static_cast<size_t>(t0 + q) * step + x]);
    }
}

// As stage, storing the decay w = exp(lw) of a log-decay tensor.
template <int L, int N, int kThreads>
__device__ __forceinline__ void stage_exp(float (&dst)[L][N], const float* __restrict__ src, size_t head0, size_t step,
                                          int t0, int len, int tid) {
#pragma unroll
    for (int it = 0; it < L * N / kThreads; ++it) {
        const int e = tid + it * kThreads, q = e / N, x = e % N;
        if (q < len) dst[q][x] = __expf(src[head0 + static_cast<size_t>(t0 + q) * step + x]);
    }
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
        case 32:
            f(std::integral_constant<int, 32>{});
            break;
        case 64:
            f(std::integral_constant<int, 64>{});
            break;
        default:
            f(std::integral_constant<int, 128>{});
            break;
    }
}

}  // namespace aviary::kernels::detail
