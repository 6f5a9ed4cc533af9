// Backward of the WKV recurrence (spec §2.5.1) without stored states: states are recomputed by a forward scan and
// the state gradient Ḡ_t = dL/dS_t is carried by reverse scans, one block per (batch, head) as the official kernels
// (spec §4.3), each state row/column split over kSplit lanes.
// The log-decay gradient uses the cumulative-sum identity of the chunked form (spec §2.5.3), checked against
// autograd in fp64 (tools/check_wkv_backward_math.py): glw_s = Σ_{t≥s} dG_t + Σ_{t>s} dE_t. Each kernel stages
// chunks of L = 1024/N steps of its inputs in shared memory (see wkv_common.cuh).
#include "aviary/kernels/wkv.cuh"
#include "wkv_common.cuh"

namespace aviary::kernels {
namespace {

using detail::to_float;

// All three kernels: block = N·G threads; thread (x = tid / G, g = tid % G) owns channel x (a row or a column of
// the state or its gradient) restricted to the other index y = 4·(c·G + g) + e, c < C4, e < 4. Sums over y are
// completed across the G adjacent lanes with detail::group_sum; lane g = 0 writes the per-channel results.

// Kernel 1 (forward scan, thread group j owns row j of S): gr, the "inter" part dE of the log-decay gradient, gu.
//   gr_t[j] = Σ_i gy_t[i]·(u[j]·k_t[j]·v_t[i] + S_{t−1}[j][i]);  dE_t[j] = r_t[j]·Σ_i gy_t[i]·S_{t−1}[j][i]
//   gu[j]   = Σ_t r_t[j]·k_t[j]·(gy_t·v_t)
// dE is written into glw as scratch; kernel 3 reads it back and overwrites it with the final gradient.
template <typename In, int N>
__global__ void __launch_bounds__(N* detail::kSplit)
    wkv_backward_gr_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                           const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s0,
                           const float* __restrict__ gy, float* __restrict__ gr, float* __restrict__ glw,
                           float* __restrict__ gu, int T, int H) {
    constexpr int G = detail::kSplit, L = detail::kChunk<N>, kThreads = N * G, C4 = N / (4 * G);
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int tid = threadIdx.x;
    const int j = tid / G;  // key channel: row j of S
    const int g = tid % G;

    // Steps [t0, t0 + L) staged: (L, N) each
    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];

    // s[4c + e] = S[j][i], i = 4·(c·G + g) + e
    float s[4 * C4];
    const size_t row = static_cast<size_t>(bh) * N * N + static_cast<size_t>(j) * N;
#pragma unroll
    for (int c = 0; c < C4; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[4 * c + e] = s0 ? s0[row + 4 * (c * G + g) + e] : 0.f;
    const float u_j = u[h * N + j];
    float gu_acc = 0.f;

    const size_t step = static_cast<size_t>(H) * N;
    const size_t head0 = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N;
    for (int t0 = 0; t0 < T; t0 += L) {
        const int len = min(L, T - t0);
        __syncthreads();
        detail::stage<L, N, kThreads>(gy_s, gy, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(v_s, v, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(r_s, r, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(k_s, k, head0, step, t0, len, tid);
        detail::stage_exp<L, N, kThreads>(w_s, lw, head0, step, t0, len, tid);
        __syncthreads();
        for (int q = 0; q < len; ++q) {
            const float r_j = r_s[q][j], k_j = k_s[q][j], w_j = w_s[q][j];
            float inter = 0.f, gyv = 0.f;
#pragma unroll
            for (int c = 0; c < C4; ++c) {
                const int i = 4 * (c * G + g);
                const float4 g4 = *reinterpret_cast<const float4*>(&gy_s[q][i]);
                const float4 v4 = *reinterpret_cast<const float4*>(&v_s[q][i]);
                float* sc = &s[4 * c];
                // inter += gy[i]·S[j][i];  gyv += gy[i]·v[i];  S[j][i] = w[j]·S[j][i] + k[j]·v[i]
                inter += g4.x * sc[0];
                gyv += g4.x * v4.x;
                sc[0] = sc[0] * w_j + k_j * v4.x;
                inter += g4.y * sc[1];
                gyv += g4.y * v4.y;
                sc[1] = sc[1] * w_j + k_j * v4.y;
                inter += g4.z * sc[2];
                gyv += g4.z * v4.z;
                sc[2] = sc[2] * w_j + k_j * v4.z;
                inter += g4.w * sc[3];
                gyv += g4.w * v4.w;
                sc[3] = sc[3] * w_j + k_j * v4.w;
            }
            inter = detail::group_sum(inter);
            gyv = detail::group_sum(gyv);
            // gr = inter + u[j]·k[j]·(gy·v);  dE = r[j]·inter;  gu += r[j]·k[j]·(gy·v)
            if (g == 0) {
                const size_t off = head0 + static_cast<size_t>(t0 + q) * step + j;
                gr[off] = inter + u_j * k_j * gyv;
                glw[off] = r_j * inter;
            }
            gu_acc += r_j * k_j * gyv;
        }
    }
    if (g == 0) gu[static_cast<size_t>(bh) * N + j] = gu_acc;
}

// Kernel 2 (reverse scan, thread group i owns column i of Ḡ): gv and gs0.
//   dA_t[j][i] = u[j]·r_t[j]·gy_t[i] + Ḡ_t[j][i];  gv_t[i] = Σ_j dA_t[j][i]·k_t[j]
//   Ḡ_{t−1}[j][i] = r_t[j]·gy_t[i] + w_t[j]·Ḡ_t[j][i];  gs0 = Ḡ_{−1}
template <typename In, int N>
__global__ void __launch_bounds__(N* detail::kSplit)
    wkv_backward_gv_kernel(const In* __restrict__ r, const In* __restrict__ k, const float* __restrict__ lw,
                           const float* __restrict__ u, const float* __restrict__ gy, const float* __restrict__ g_sout,
                           float* __restrict__ gv, float* __restrict__ gs0, int T, int H) {
    constexpr int G = detail::kSplit, L = detail::kChunk<N>, kThreads = N * G, C4 = N / (4 * G);
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int tid = threadIdx.x;
    const int i = tid / G;  // value channel: column i of Ḡ
    const int g = tid % G;

    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float u_s[N];

    // gs[4c + e] = Ḡ[j][i], j = 4·(c·G + g) + e, starting from Ḡ_{T−1} = g_sout
    float gs[4 * C4];
    const size_t state_base = static_cast<size_t>(bh) * N * N;
#pragma unroll
    for (int c = 0; c < C4; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int j = 4 * (c * G + g) + e;
            gs[4 * c + e] = g_sout ? g_sout[state_base + static_cast<size_t>(j) * N + i] : 0.f;
        }
    if (tid < N) u_s[tid] = u[h * N + tid];

    const size_t step = static_cast<size_t>(H) * N;
    const size_t head0 = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N;
    for (int t_end = T; t_end > 0; t_end -= L) {
        const int t0 = max(0, t_end - L);
        const int len = t_end - t0;
        __syncthreads();
        detail::stage<L, N, kThreads>(r_s, r, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(k_s, k, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(gy_s, gy, head0, step, t0, len, tid);
        detail::stage_exp<L, N, kThreads>(w_s, lw, head0, step, t0, len, tid);
        __syncthreads();
        for (int q = len - 1; q >= 0; --q) {
            const float gy_i = gy_s[q][i];
            float acc0 = 0.f, acc1 = 0.f;
#pragma unroll
            for (int c = 0; c < C4; ++c) {
                const int j = 4 * (c * G + g);
                const float4 rr = *reinterpret_cast<const float4*>(&r_s[q][j]);
                const float4 kk = *reinterpret_cast<const float4*>(&k_s[q][j]);
                const float4 ww = *reinterpret_cast<const float4*>(&w_s[q][j]);
                const float4 uu = *reinterpret_cast<const float4*>(&u_s[j]);
                float* gc = &gs[4 * c];
                // gv += (u[j]·r[j]·gy[i] + Ḡ[j][i])·k[j];  Ḡ[j][i] = r[j]·gy[i] + w[j]·Ḡ[j][i]
                float rg = rr.x * gy_i;
                acc0 += (uu.x * rg + gc[0]) * kk.x;
                gc[0] = gc[0] * ww.x + rg;
                rg = rr.y * gy_i;
                acc1 += (uu.y * rg + gc[1]) * kk.y;
                gc[1] = gc[1] * ww.y + rg;
                rg = rr.z * gy_i;
                acc0 += (uu.z * rg + gc[2]) * kk.z;
                gc[2] = gc[2] * ww.z + rg;
                rg = rr.w * gy_i;
                acc1 += (uu.w * rg + gc[3]) * kk.w;
                gc[3] = gc[3] * ww.w + rg;
            }
            const float acc = detail::group_sum(acc0 + acc1);
            if (g == 0) gv[head0 + static_cast<size_t>(t0 + q) * step + i] = acc;
        }
    }
    if (gs0) {
#pragma unroll
        for (int c = 0; c < C4; ++c)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int j = 4 * (c * G + g) + e;
                gs0[state_base + static_cast<size_t>(j) * N + i] = gs[4 * c + e];
            }
    }
}

// Kernel 3 (reverse scan, thread group j owns row j of Ḡ): gk and the log-decay gradient.
//   gk'_t[j] = Σ_i Ḡ_t[j][i]·v_t[i];  gk_t[j] = u[j]·r_t[j]·(gy_t·v_t) + gk'_t[j]
//   dG_t[j] = −k_t[j]·gk'_t[j]  (+ Σ_i g_sout[j][i]·S_T[j][i] at t = T−1)
//   glw_s = Σ_{t≥s} dG_t + Σ_{t>s} dE_t   (dE from kernel 1, stored in glw)
template <typename In, int N>
__global__ void __launch_bounds__(N* detail::kSplit)
    wkv_backward_gk_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                           const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s_fin,
                           const float* __restrict__ gy, const float* __restrict__ g_sout, float* __restrict__ gk,
                           float* __restrict__ glw, int T, int H) {
    constexpr int G = detail::kSplit, L = detail::kChunk<N>, kThreads = N * G, C4 = N / (4 * G);
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int tid = threadIdx.x;
    const int j = tid / G;  // key channel: row j of Ḡ
    const int g = tid % G;

    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float de_s[L][N];

    // gs[4c + e] = Ḡ[j][i], i = 4·(c·G + g) + e, starting from Ḡ_{T−1} = g_sout;  last = Σ_i g_sout[j][i]·S_T[j][i]
    float gs[4 * C4];
    float last = 0.f;
    const size_t row = static_cast<size_t>(bh) * N * N + static_cast<size_t>(j) * N;
#pragma unroll
    for (int c = 0; c < C4; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int i = 4 * (c * G + g) + e;
            gs[4 * c + e] = g_sout ? g_sout[row + i] : 0.f;
            if (g_sout) last += gs[4 * c + e] * s_fin[row + i];
        }
    last = detail::group_sum(last);
    const float u_j = u[h * N + j];
    float cum = last;  // running Σ dG + Σ dE of the later steps (identical in the G lanes of row j)

    const size_t step = static_cast<size_t>(H) * N;
    const size_t head0 = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N;
    for (int t_end = T; t_end > 0; t_end -= L) {
        const int t0 = max(0, t_end - L);
        const int len = t_end - t0;
        __syncthreads();
        detail::stage<L, N, kThreads>(gy_s, gy, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(v_s, v, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(r_s, r, head0, step, t0, len, tid);
        detail::stage<L, N, kThreads>(k_s, k, head0, step, t0, len, tid);
        detail::stage_exp<L, N, kThreads>(w_s, lw, head0, step, t0, len, tid);
        // dE_t from kernel 1: all of this chunk is read here, before the barrier; it is overwritten only after it
        detail::stage<L, N, kThreads>(de_s, static_cast<const float*>(glw), head0, step, t0, len, tid);
        __syncthreads();
        for (int q = len - 1; q >= 0; --q) {
            const float r_j = r_s[q][j], k_j = k_s[q][j], w_j = w_s[q][j];
            float inter = 0.f, gyv = 0.f;
#pragma unroll
            for (int c = 0; c < C4; ++c) {
                const int i = 4 * (c * G + g);
                const float4 g4 = *reinterpret_cast<const float4*>(&gy_s[q][i]);
                const float4 v4 = *reinterpret_cast<const float4*>(&v_s[q][i]);
                float* gc = &gs[4 * c];
                // gk' += Ḡ[j][i]·v[i];  gyv += gy[i]·v[i];  Ḡ[j][i] = r[j]·gy[i] + w[j]·Ḡ[j][i]
                inter += gc[0] * v4.x;
                gyv += g4.x * v4.x;
                gc[0] = gc[0] * w_j + r_j * g4.x;
                inter += gc[1] * v4.y;
                gyv += g4.y * v4.y;
                gc[1] = gc[1] * w_j + r_j * g4.y;
                inter += gc[2] * v4.z;
                gyv += g4.z * v4.z;
                gc[2] = gc[2] * w_j + r_j * g4.z;
                inter += gc[3] * v4.w;
                gyv += g4.w * v4.w;
                gc[3] = gc[3] * w_j + r_j * g4.w;
            }
            inter = detail::group_sum(inter);
            gyv = detail::group_sum(gyv);
            // glw_t = (Σ_{τ>t} dG_τ + dE_τ) + dG_t;  then add dE_t for the earlier steps
            cum -= k_j * inter;
            if (g == 0) {
                const size_t off = head0 + static_cast<size_t>(t0 + q) * step + j;
                gk[off] = u_j * r_j * gyv + inter;
                glw[off] = cum;
            }
            cum += de_s[q][j];
        }
    }
}

}  // namespace

template <typename In>
cudaError_t wkv_backward(const In* r, const In* k, const In* v, const float* lw, const float* u, const float* s0,
                         const float* s_fin, const float* gy, const float* g_sout, float* gr, float* gk, float* gv,
                         float* glw, float* gu, float* gs0, int B, int T, int H, int N, cudaStream_t stream) {
    constexpr const char* kOp = "wkv_backward";
    detail::require_dims(kOp, B, T, H, N);
    detail::require_ptr(r, kOp, "r");
    detail::require_ptr(k, kOp, "k");
    detail::require_ptr(v, kOp, "v");
    detail::require_ptr(lw, kOp, "lw");
    detail::require_ptr(u, kOp, "u");
    detail::require_ptr(gy, kOp, "gy");
    detail::require_ptr(gr, kOp, "gr");
    detail::require_ptr(gk, kOp, "gk");
    detail::require_ptr(gv, kOp, "gv");
    detail::require_ptr(glw, kOp, "glw");
    detail::require_ptr(gu, kOp, "gu");
    detail::require(g_sout == nullptr || s_fin != nullptr, kOp, "s_fin (final state) is required when g_sout is given");
    cudaError_t err = cudaSuccess;
    detail::dispatch_head_size(N, [&](auto n) {
        constexpr int kN = decltype(n)::value;
        // Order matters: the gk kernel reads dE that the gr kernel leaves in glw (same stream).
        const dim3 grid(B * H), block(kN * detail::kSplit);
        wkv_backward_gr_kernel<In, kN><<<grid, block, 0, stream>>>(r, k, v, lw, u, s0, gy, gr, glw, gu, T, H);
        if ((err = cudaGetLastError()) != cudaSuccess) return;
        wkv_backward_gv_kernel<In, kN><<<grid, block, 0, stream>>>(r, k, lw, u, gy, g_sout, gv, gs0, T, H);
        if ((err = cudaGetLastError()) != cudaSuccess) return;
        wkv_backward_gk_kernel<In, kN><<<grid, block, 0, stream>>>(r, k, v, lw, u, s_fin, gy, g_sout, gk, glw, T, H);
        err = cudaGetLastError();
    });
    return err;
}

template cudaError_t wkv_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                         const float*, const float*, const float*, const float*, float*, float*, float*,
                                         float*, float*, float*, int, int, int, int, cudaStream_t);
template cudaError_t wkv_backward<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                 const float*, const float*, const float*, const float*, const float*,
                                                 const float*, float*, float*, float*, float*, float*, float*, int, int,
                                                 int, int, cudaStream_t);

}  // namespace aviary::kernels
