// Sequence forward of the WKV recurrence (spec §2.5.1) on a B·H × N grid, one block per (batch, head), as the
// official wkv5/wkv6 forward (spec §4.1): thread i keeps column i of the fp32 state S[·][i] in registers and
// reads r, k, v, decay from shared memory, where chunks of L = 1024/N steps are staged (two barriers per chunk).
#include "aviary/kernels/wkv.cuh"
#include "wkv_common.cuh"

namespace aviary::kernels {
namespace {

using detail::to_float;

template <typename In, int N>
__global__ void __launch_bounds__(N)
    wkv_forward_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                       const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s0,
                       float* __restrict__ y, float* __restrict__ s_out, int T, int H) {
    constexpr int L = detail::kChunk<N>;
    const int bh = blockIdx.x;  // b·H + h
    const int b = bh / H;
    const int h = bh % H;
    const int i = threadIdx.x;  // value channel: this thread owns column i of S

    // Steps [t0, t0 + L) of r, k, decay, v: (L, N) each
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float u_s[N];

    // s[j] = S[j][i], column i of the (N, N) head state
    float s[N];
    const size_t state_base = static_cast<size_t>(bh) * N * N;
#pragma unroll
    for (int j = 0; j < N; ++j) s[j] = s0 ? s0[state_base + static_cast<size_t>(j) * N + i] : 0.f;
    u_s[i] = u[h * N + i];

    const size_t step = static_cast<size_t>(H) * N;  // stride of t in (B, T, H, N)
    const size_t base = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N + i;
    for (int t0 = 0; t0 < T; t0 += L) {
        const int len = min(L, T - t0);
        const size_t off0 = base + static_cast<size_t>(t0) * step;
        __syncthreads();  // the previous chunk has been read by every thread
        detail::stage<L, N>(r_s, r, off0, step, len, i);
        detail::stage<L, N>(k_s, k, off0, step, len, i);
        detail::stage<L, N>(v_s, v, off0, step, len, i);
        detail::stage_exp<L, N>(w_s, lw, off0, step, len, i);  // w = exp(lw): the decay of step t
        __syncthreads();
        for (int q = 0; q < len; ++q) {
            const float v_i = v_s[q][i];
            // four partial sums break the dependency chain of the y accumulation
            float acc0 = 0.f, acc1 = 0.f, acc2 = 0.f, acc3 = 0.f;
#pragma unroll
            for (int j = 0; j < N; j += 4) {
                const float4 rr = *reinterpret_cast<const float4*>(&r_s[q][j]);
                const float4 kk = *reinterpret_cast<const float4*>(&k_s[q][j]);
                const float4 ww = *reinterpret_cast<const float4*>(&w_s[q][j]);
                const float4 uu = *reinterpret_cast<const float4*>(&u_s[j]);
                // y_t[i] += r[j]·(u[j]·k[j]·v[i] + S[j][i]);  S[j][i] = w[j]·S[j][i] + k[j]·v[i]
                float kv = kk.x * v_i;
                acc0 += rr.x * (uu.x * kv + s[j]);
                s[j] = s[j] * ww.x + kv;
                kv = kk.y * v_i;
                acc1 += rr.y * (uu.y * kv + s[j + 1]);
                s[j + 1] = s[j + 1] * ww.y + kv;
                kv = kk.z * v_i;
                acc2 += rr.z * (uu.z * kv + s[j + 2]);
                s[j + 2] = s[j + 2] * ww.z + kv;
                kv = kk.w * v_i;
                acc3 += rr.w * (uu.w * kv + s[j + 3]);
                s[j + 3] = s[j + 3] * ww.w + kv;
            }
            y[off0 + static_cast<size_t>(q) * step] = (acc0 + acc1) + (acc2 + acc3);
        }
    }
#pragma unroll
    for (int j = 0; j < N; ++j) s_out[state_base + static_cast<size_t>(j) * N + i] = s[j];
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
        wkv_forward_kernel<In, kN><<<B * H, kN, 0, stream>>>(r, k, v, lw, u, s0, y, s_out, T, H);
    });
    return cudaGetLastError();
}

template cudaError_t wkv_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                        const float*, float*, float*, int, int, int, int, cudaStream_t);
template cudaError_t wkv_forward<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                const float*, const float*, const float*, float*, float*, int, int,
                                                int, int, cudaStream_t);

}  // namespace aviary::kernels
