// One recurrent WKV step for a batch (inference, spec §2.7 with the recurrence of spec §2.5.1): the fp32 state
// (B, H, N, N) is updated in place. One block per (batch, head) of N × kRowGroups threads: thread (i, g) handles
// value column i for the key rows of group g, so the N² state is streamed with coalesced loads from many threads.
#include "aviary/kernels/wkv.cuh"
#include "wkv_common.cuh"

namespace aviary::kernels {
namespace {

using detail::to_float;

constexpr int kRowGroups = 4;

template <typename In, int N>
__global__ void __launch_bounds__(N* kRowGroups)
    wkv_decode_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                      const float* __restrict__ lw, const float* __restrict__ u, float* __restrict__ state,
                      float* __restrict__ y, int H) {
    constexpr int kRows = N / kRowGroups;  // key rows per group
    const int bh = blockIdx.x;
    const int h = bh % H;
    const int i = threadIdx.x;  // value channel
    const int g = threadIdx.y;  // row group

    __shared__ float r_s[N], k_s[N], w_s[N], u_s[N];
    __shared__ float part[kRowGroups][N];

    const size_t vec = static_cast<size_t>(bh) * N;  // (B, H, N) offset of this head
    if (g == 0) {
        r_s[i] = to_float(r[vec + i]);
        k_s[i] = to_float(k[vec + i]);
        w_s[i] = __expf(lw[vec + i]);
        u_s[i] = u[static_cast<size_t>(h) * N + i];
    }
    __syncthreads();
    const float v_i = to_float(v[vec + i]);

    float* s = state + static_cast<size_t>(bh) * N * N + static_cast<size_t>(g) * kRows * N + i;
    float sv[kRows];
#pragma unroll
    for (int jj = 0; jj < kRows; ++jj) sv[jj] = s[static_cast<size_t>(jj) * N];
    float acc = 0.f;
#pragma unroll
    for (int jj = 0; jj < kRows; ++jj) {
        const int j = g * kRows + jj;
        // y[i] += r[j]·(u[j]·k[j]·v[i] + S[j][i]);  S[j][i] = w[j]·S[j][i] + k[j]·v[i]
        const float kv = k_s[j] * v_i;
        acc += r_s[j] * (u_s[j] * kv + sv[jj]);
        s[static_cast<size_t>(jj) * N] = sv[jj] * w_s[j] + kv;
    }
    part[g][i] = acc;
    __syncthreads();
    if (g == 0) {
        float sum = 0.f;
#pragma unroll
        for (int q = 0; q < kRowGroups; ++q) sum += part[q][i];
        y[vec + i] = sum;
    }
}

}  // namespace

template <typename In>
cudaError_t wkv_decode(const In* r, const In* k, const In* v, const float* lw, const float* u, float* state, float* y,
                       int B, int H, int N, cudaStream_t stream) {
    constexpr const char* kOp = "wkv_decode";
    detail::require_dims(kOp, B, 1, H, N);
    detail::require_ptr(r, kOp, "r");
    detail::require_ptr(k, kOp, "k");
    detail::require_ptr(v, kOp, "v");
    detail::require_ptr(lw, kOp, "lw");
    detail::require_ptr(u, kOp, "u");
    detail::require_ptr(state, kOp, "state");
    detail::require_ptr(y, kOp, "y");
    detail::dispatch_head_size(N, [&](auto n) {
        constexpr int kN = decltype(n)::value;
        wkv_decode_kernel<In, kN><<<B * H, dim3(kN, kRowGroups), 0, stream>>>(r, k, v, lw, u, state, y, H);
    });
    return cudaGetLastError();
}

template cudaError_t wkv_decode<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                       float*, int, int, int, cudaStream_t);
template cudaError_t wkv_decode<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                               const float*, const float*, float*, float*, int, int, int, cudaStream_t);

}  // namespace aviary::kernels
