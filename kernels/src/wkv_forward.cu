// Sequence forward of the WKV recurrence (spec §2.5.1), one block per (batch, head) as the official wkv5/wkv6
// forward (spec §4.1), but with column i of the fp32 state S[·][i] split over kSplit adjacent lanes (N·kSplit threads)
// in registers; r, k, v, decay are read from shared memory, where chunks of L = 1024/N steps are staged.
#include "aviary/kernels/wkv.cuh"
#include "wkv_common.cuh"

namespace aviary::kernels {
namespace {

using detail::to_float;

template <typename In, int N>
__global__ void __launch_bounds__(N* detail::kSplit)
    wkv_forward_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                       const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s0,
                       float* __restrict__ y, float* __restrict__ s_out, int T, int H) {
    constexpr int G = detail::kSplit, L = detail::kChunk<N>, kThreads = N * G;
    constexpr int C4 = N / (4 * G);  // float4 groups of key rows per thread
    const int bh = blockIdx.x;       // b·H + h
    const int b = bh / H;
    const int h = bh % H;
    const int tid = threadIdx.x;
    const int i = tid / G;  // value channel: column i of S ...
    const int g = tid % G;  // ... key rows j = 4·(c·G + g) + e, c < C4, e < 4, split over G adjacent lanes

    // Steps [t0, t0 + L) of r, k, decay, v: (L, N) each
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float u_s[N];

    // s[4c + e] = S[j][i] for this thread's key rows j
    float s[4 * C4];
    const size_t state_base = static_cast<size_t>(bh) * N * N;
#pragma unroll
    for (int c = 0; c < C4; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int j = 4 * (c * G + g) + e;
            s[4 * c + e] = s0 ? s0[state_base + static_cast<size_t>(j) * N + i] : 0.f;
        }
    if (tid < N) u_s[tid] = u[h * N + tid];

    const size_t step = static_cast<size_t>(H) * N;  // stride of t in (B, T, H, N)
    const size_t head0 = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N;
    for (int t0 = 0; t0 < T; t0 += L) {
        const int len = min(L, T - t0);
        __syncthreads();  // the previous chunk has been read by every thread
        detail::stage<L, N, kThreads>(r_s, r, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(k_s, k, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(v_s, v, head0, step, t0, len, tid);
        detail::stage_exp<L, N, kThreads>(w_s, lw, head0, step, t0, len, tid);  // w = exp(lw), decay of step t
        __syncthreads();
        for (int q = 0; q < len; ++q) {
            const float v_i = v_s[q][i];
            float acc0 = 0.f, acc1 = 0.f;
#pragma unroll
            for (int c = 0; c < C4; ++c) {
                const int j = 4 * (c * G + g);
                const float4 rr = *reinterpret_cast<const float4*>(&r_s[q][j]);
                const float4 kk = *reinterpret_cast<const float4*>(&k_s[q][j]);
                const float4 ww = *reinterpret_cast<const float4*>(&w_s[q][j]);
                const float4 uu = *reinterpret_cast<const float4*>(&u_s[j]);
                float* sc = &s[4 * c];
                // y_t[i] += r[j]·(u[j]·k[j]·v[i] + S[j][i]);  S[j][i] = w[j]·S[j][i] + k[j]·v[i]
                float kv = kk.x * v_i;
                acc0 += rr.x * (uu.x * kv + sc[0]);
                sc[0] = sc[0] * ww.x + kv;
                kv = kk.y * v_i;
                acc1 += rr.y * (uu.y * kv + sc[1]);
                sc[1] = sc[1] * ww.y + kv;
                kv = kk.z * v_i;
                acc0 += rr.z * (uu.z * kv + sc[2]);
                sc[2] = sc[2] * ww.z + kv;
                kv = kk.w * v_i;
                acc1 += rr.w * (uu.w * kv + sc[3]);
                sc[3] = sc[3] * ww.w + kv;
            }
            // y_t[i] = Σ over the G lanes of column i
            const float acc = detail::group_sum(acc0 + acc1);
            if (g == 0) y[head0 + static_cast<size_t>(t0 + q) * step + i] = acc;
        }
    }
#pragma unroll
    for (int c = 0; c < C4; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int j = 4 * (c * G + g) + e;
            s_out[state_base + static_cast<size_t>(j) * N + i] = s[4 * c + e];
        }
}

}  // namespace

template <typename In>
cudaError_t wkv_forward(const In* r, const In* k, const In* v, const float* lw, const float* u, const float* s0,
                        float* y, float* s_out, int B, int T, int H, int N, cudaStream_t stream) {
    constexpr const char* kOp = "wkv_forward";
    detail::require_dims(kOp, B, T, H, N);
    detail::require_ptr(r, kOp, "r");
    detail::require_ptr(k, kOp, "k");
    detail::require_ptr(v, kOp, "v");
    detail::require_ptr(lw, kOp, "lw");
    detail::require_ptr(u, kOp, "u");
    detail::require_ptr(y, kOp, "y");
    detail::require_ptr(s_out, kOp, "s_out");
    detail::dispatch_head_size(N, [&](auto n) {
        constexpr int kN = decltype(n)::value;
        wkv_forward_kernel<In, kN><<<B * H, kN * detail::kSplit, 0, stream>>>(r, k, v, lw, u, s0, y, s_out, T, H);
    });
    return cudaGetLastError();
}

template cudaError_t wkv_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                        const float*, float*, float*, int, int, int, int, cudaStream_t);
template cudaError_t wkv_forward<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                const float*, const float*, const float*, float*, float*, int, int, int,
                                                int, cudaStream_t);

}  // namespace aviary::kernels
