// Backward of the WKV recurrence (spec §2.5.1) without stored states: states are recomputed by a forward scan and
// the state gradient Ḡ_t = dL/dS_t is carried by reverse scans, on B·H × N grids as the official kernels (spec §4.3).
// The log-decay gradient uses the cumulative-sum identity of the chunked form (spec §2.5.3), checked against
// autograd in fp64 (tools/check_wkv_backward_math.py): glw_s = Σ_{t≥s} dG_t + Σ_{t>s} dE_t. Each kernel stages
// chunks of L = 1024/N steps of its inputs in shared memory (see wkv_common.cuh).
#include "aviary/kernels/wkv.cuh"
#include "wkv_common.cuh"

namespace aviary::kernels {
namespace {

using detail::to_float;

// Kernel 1 (forward scan, thread j owns row j of S): gr, the "inter" part dE of the log-decay gradient, and gu.
//   gr_t[j] = Σ_i gy_t[i]·(u[j]·k_t[j]·v_t[i] + S_{t−1}[j][i]);  dE_t[j] = r_t[j]·Σ_i gy_t[i]·S_{t−1}[j][i]
//   gu[j]   = Σ_t r_t[j]·k_t[j]·(gy_t·v_t)
// dE is written into glw as scratch; kernel 3 reads it back and overwrites it with the final gradient.
template <typename In, int N>
__global__ void __launch_bounds__(N)
    wkv_backward_gr_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                           const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s0,
                           const float* __restrict__ gy, float* __restrict__ gr, float* __restrict__ glw,
                           float* __restrict__ gu, int T, int H) {
    constexpr int L = detail::kChunk<N>;
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int j = threadIdx.x;  // key channel: this thread owns row j of S

    // Steps [t0, t0 + L) staged: (L, N) each
    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];

    // s[i] = S[j][i], row j of the head state
    float s[N];
    const size_t row = static_cast<size_t>(bh) * N * N + static_cast<size_t>(j) * N;
#pragma unroll
    for (int i = 0; i < N; ++i) s[i] = s0 ? s0[row + i] : 0.f;
    const float u_j = u[h * N + j];
    float gu_acc = 0.f;

    const size_t step = static_cast<size_t>(H) * N;
    const size_t base = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N + j;
    for (int t0 = 0; t0 < T; t0 += L) {
        const int len = min(L, T - t0);
        const size_t off0 = base + static_cast<size_t>(t0) * step;
        __syncthreads();
        detail::stage<L, N>(gy_s, gy, off0, step, len, j);
        detail::stage<L, N>(v_s, v, off0, step, len, j);
        detail::stage<L, N>(r_s, r, off0, step, len, j);
        detail::stage<L, N>(k_s, k, off0, step, len, j);
        detail::stage_exp<L, N>(w_s, lw, off0, step, len, j);
        __syncthreads();
        for (int q = 0; q < len; ++q) {
            const float r_j = r_s[q][j], k_j = k_s[q][j], w_j = w_s[q][j];
            float inter0 = 0.f, inter1 = 0.f, gyv0 = 0.f, gyv1 = 0.f;
#pragma unroll
            for (int i = 0; i < N; i += 4) {
                const float4 g4 = *reinterpret_cast<const float4*>(&gy_s[q][i]);
                const float4 v4 = *reinterpret_cast<const float4*>(&v_s[q][i]);
                // inter += gy[i]·S[j][i];  gyv += gy[i]·v[i];  S[j][i] = w[j]·S[j][i] + k[j]·v[i]
                inter0 += g4.x * s[i];
                gyv0 += g4.x * v4.x;
                s[i] = s[i] * w_j + k_j * v4.x;
                inter1 += g4.y * s[i + 1];
                gyv1 += g4.y * v4.y;
                s[i + 1] = s[i + 1] * w_j + k_j * v4.y;
                inter0 += g4.z * s[i + 2];
                gyv0 += g4.z * v4.z;
                s[i + 2] = s[i + 2] * w_j + k_j * v4.z;
                inter1 += g4.w * s[i + 3];
                gyv1 += g4.w * v4.w;
                s[i + 3] = s[i + 3] * w_j + k_j * v4.w;
            }
            const float inter = inter0 + inter1, gyv = gyv0 + gyv1;
            const size_t off = off0 + static_cast<size_t>(q) * step;
            // gr = inter + u[j]·k[j]·(gy·v);  dE = r[j]·inter;  gu += r[j]·k[j]·(gy·v)
            gr[off] = inter + u_j * k_j * gyv;
            glw[off] = r_j * inter;
            gu_acc += r_j * k_j * gyv;
        }
    }
    gu[static_cast<size_t>(bh) * N + j] = gu_acc;
}

// Kernel 2 (reverse scan, thread i owns column i of Ḡ): gv and gs0.
//   dA_t[j][i] = u[j]·r_t[j]·gy_t[i] + Ḡ_t[j][i];  gv_t[i] = Σ_j dA_t[j][i]·k_t[j]
//   Ḡ_{t−1}[j][i] = r_t[j]·gy_t[i] + w_t[j]·Ḡ_t[j][i];  gs0 = Ḡ_{−1}
template <typename In, int N>
__global__ void __launch_bounds__(N)
    wkv_backward_gv_kernel(const In* __restrict__ r, const In* __restrict__ k, const float* __restrict__ lw,
                           const float* __restrict__ u, const float* __restrict__ gy, const float* __restrict__ g_sout,
                           float* __restrict__ gv, float* __restrict__ gs0, int T, int H) {
    constexpr int L = detail::kChunk<N>;
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int i = threadIdx.x;

    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float u_s[N];

    // g[j] = Ḡ[j][i], starting from Ḡ_{T−1} = g_sout
    float g[N];
    const size_t state_base = static_cast<size_t>(bh) * N * N;
#pragma unroll
    for (int j = 0; j < N; ++j) g[j] = g_sout ? g_sout[state_base + static_cast<size_t>(j) * N + i] : 0.f;
    u_s[i] = u[h * N + i];

    const size_t step = static_cast<size_t>(H) * N;
    const size_t base = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N + i;
    for (int t_end = T; t_end > 0; t_end -= L) {
        const int t0 = max(0, t_end - L);
        const int len = t_end - t0;
        const size_t off0 = base + static_cast<size_t>(t0) * step;
        __syncthreads();
        detail::stage<L, N>(r_s, r, off0, step, len, i);
        detail::stage<L, N>(k_s, k, off0, step, len, i);
        detail::stage<L, N>(gy_s, gy, off0, step, len, i);
        detail::stage_exp<L, N>(w_s, lw, off0, step, len, i);
        __syncthreads();
        for (int q = len - 1; q >= 0; --q) {
            const float gy_i = gy_s[q][i];
            float acc0 = 0.f, acc1 = 0.f;
#pragma unroll
            for (int j = 0; j < N; j += 4) {
                const float4 rr = *reinterpret_cast<const float4*>(&r_s[q][j]);
                const float4 kk = *reinterpret_cast<const float4*>(&k_s[q][j]);
                const float4 ww = *reinterpret_cast<const float4*>(&w_s[q][j]);
                const float4 uu = *reinterpret_cast<const float4*>(&u_s[j]);
                // gv += (u[j]·r[j]·gy[i] + Ḡ[j][i])·k[j];  Ḡ[j][i] = r[j]·gy[i] + w[j]·Ḡ[j][i]
                float rg = rr.x * gy_i;
                acc0 += (uu.x * rg + g[j]) * kk.x;
                g[j] = g[j] * ww.x + rg;
                rg = rr.y * gy_i;
                acc1 += (uu.y * rg + g[j + 1]) * kk.y;
                g[j + 1] = g[j + 1] * ww.y + rg;
                rg = rr.z * gy_i;
                acc0 += (uu.z * rg + g[j + 2]) * kk.z;
                g[j + 2] = g[j + 2] * ww.z + rg;
                rg = rr.w * gy_i;
                acc1 += (uu.w * rg + g[j + 3]) * kk.w;
                g[j + 3] = g[j + 3] * ww.w + rg;
            }
            gv[off0 + static_cast<size_t>(q) * step] = acc0 + acc1;
        }
    }
    if (gs0) {
#pragma unroll
        for (int j = 0; j < N; ++j) gs0[state_base + static_cast<size_t>(j) * N + i] = g[j];
    }
}

// Kernel 3 (reverse scan, thread j owns row j of Ḡ): gk and the log-decay gradient.
//   gk'_t[j] = Σ_i Ḡ_t[j][i]·v_t[i];  gk_t[j] = u[j]·r_t[j]·(gy_t·v_t) + gk'_t[j]
//   dG_t[j] = −k_t[j]·gk'_t[j]  (+ Σ_i g_sout[j][i]·S_T[j][i] at t = T−1)
//   glw_s = Σ_{t≥s} dG_t + Σ_{t>s} dE_t   (dE from kernel 1, stored in glw)
template <typename In, int N>
__global__ void __launch_bounds__(N)
    wkv_backward_gk_kernel(const In* __restrict__ r, const In* __restrict__ k, const In* __restrict__ v,
                           const float* __restrict__ lw, const float* __restrict__ u, const float* __restrict__ s_fin,
                           const float* __restrict__ gy, const float* __restrict__ g_sout, float* __restrict__ gk,
                           float* __restrict__ glw, int T, int H) {
    constexpr int L = detail::kChunk<N>;
    const int bh = blockIdx.x;
    const int b = bh / H;
    const int h = bh % H;
    const int j = threadIdx.x;

    __shared__ __align__(16) float gy_s[L][N];
    __shared__ __align__(16) float v_s[L][N];
    __shared__ __align__(16) float r_s[L][N];
    __shared__ __align__(16) float k_s[L][N];
    __shared__ __align__(16) float w_s[L][N];
    __shared__ __align__(16) float de_s[L][N];

    // g[i] = Ḡ[j][i], starting from Ḡ_{T−1} = g_sout;  last = Σ_i g_sout[j][i]·S_T[j][i]
    float g[N];
    float last = 0.f;
    const size_t row = static_cast<size_t>(bh) * N * N + static_cast<size_t>(j) * N;
    if (g_sout) {
#pragma unroll
        for (int i = 0; i < N; ++i) {
            g[i] = g_sout[row + i];
            last += g[i] * s_fin[row + i];
        }
    } else {
#pragma unroll
        for (int i = 0; i < N; ++i) g[i] = 0.f;
    }
    const float u_j = u[h * N + j];
    float cum = last;  // running Σ dG + Σ dE of the later steps

    const size_t step = static_cast<size_t>(H) * N;
    const size_t base = static_cast<size_t>(b) * T * step + static_cast<size_t>(h) * N + j;
    for (int t_end = T; t_end > 0; t_end -= L) {
        const int t0 = max(0, t_end - L);
        const int len = t_end - t0;
        const size_t off0 = base + static_cast<size_t>(t0) * step;
        __syncthreads();
        detail::stage<L, N>(gy_s, gy, off0, step, len, j);
        detail::stage<L, N>(v_s, v, off0, step, len, j);
        detail::stage<L, N>(r_s, r, off0, step, len, j);
        detail::stage<L, N>(k_s, k, off0, step, len, j);
        detail::stage_exp<L, N>(w_s, lw, off0, step, len, j);
        // dE_t from kernel 1; thread j reads only the elements it overwrites below
        detail::stage<L, N>(de_s, static_cast<const float*>(glw), off0, step, len, j);
        __syncthreads();
        for (int q = len - 1; q >= 0; --q) {
            const float r_j = r_s[q][j], k_j = k_s[q][j], w_j = w_s[q][j];
            float inter0 = 0.f, inter1 = 0.f, gyv0 = 0.f, gyv1 = 0.f;
#pragma unroll
            for (int i = 0; i < N; i += 4) {
                const float4 g4 = *reinterpret_cast<const float4*>(&gy_s[q][i]);
                const float4 v4 = *reinterpret_cast<const float4*>(&v_s[q][i]);
                // gk' += Ḡ[j][i]·v[i];  gyv += gy[i]·v[i];  Ḡ[j][i] = r[j]·gy[i] + w[j]·Ḡ[j][i]
                inter0 += g[i] * v4.x;
                gyv0 += g4.x * v4.x;
                g[i] = g[i] * w_j + r_j * g4.x;
                inter1 += g[i + 1] * v4.y;
                gyv1 += g4.y * v4.y;
                g[i + 1] = g[i + 1] * w_j + r_j * g4.y;
                inter0 += g[i + 2] * v4.z;
                gyv0 += g4.z * v4.z;
                g[i + 2] = g[i + 2] * w_j + r_j * g4.z;
                inter1 += g[i + 3] * v4.w;
                gyv1 += g4.w * v4.w;
                g[i + 3] = g[i + 3] * w_j + r_j * g4.w;
            }
            const float inter = inter0 + inter1, gyv = gyv0 + gyv1;
            const size_t off = off0 + static_cast<size_t>(q) * step;
            gk[off] = u_j * r_j * gyv + inter;
            // glw_t = (Σ_{τ>t} dG_τ + dE_τ) + dG_t;  then add dE_t for the earlier steps
            cum -= k_j * inter;
            glw[off] = cum;
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
        wkv_backward_gr_kernel<In, kN><<<B * H, kN, 0, stream>>>(r, k, v, lw, u, s0, gy, gr, glw, gu, T, H);
        if ((err = cudaGetLastError()) != cudaSuccess) return;
        wkv_backward_gv_kernel<In, kN><<<B * H, kN, 0, stream>>>(r, k, lw, u, gy, g_sout, gv, gs0, T, H);
        if ((err = cudaGetLastError()) != cudaSuccess) return;
        wkv_backward_gk_kernel<In, kN><<<B * H, kN, 0, stream>>>(r, k, v, lw, u, s_fin, gy, g_sout, gk, glw, T, H);
        err = cudaGetLastError();
    });
    return err;
}

template cudaError_t wkv_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                         const float*, const float*, const float*, const float*, float*, float*,
                                         float*, float*, float*, float*, int, int, int, int, cudaStream_t);
template cudaError_t wkv_backward<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                 const float*, const float*, const float*, const float*, const float*,
                                                 const float*, float*, float*, float*, float*, float*, float*, int,
                                                 int, int, int, cudaStream_t);

}  // namespace aviary::kernels
