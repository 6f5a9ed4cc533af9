// WKV on the CPU as one fused loop per (sequence, head), forward and backward (a LibTorch autograd Function).
// The recurrence is the reference's (spec §2.5.1), in fp32:
//   y_t[i] = Σ_j r_t[j]·(u[j]·k_t[j]·v_t[i] + S_{t−1}[j][i]);   S_t[j][i] = w_t[j]·S_{t−1}[j][i] + k_t[j]·v_t[i]
// Backward runs the recurrence in reverse with G_t = ∂L/∂S_t:
//   ∂r_t[j] = u[j]·k_t[j]·(dy_t·v_t) + Σ_i S_{t−1}[j][i]·dy_t[i]      ∂u[j] += r_t[j]·k_t[j]·(dy_t·v_t)
//   ∂k_t[j] = r_t[j]·u[j]·(dy_t·v_t) + Σ_i G_t[j][i]·v_t[i]           ∂v_t[i] = (Σ_j r_t[j]u[j]k_t[j])·dy_t[i] + Σ_j
//   G_t[j][i]·k_t[j] ∂log_w_t[j] = w_t[j]·Σ_i G_t[j][i]·S_{t−1}[j][i]                   G_{t−1} = diag(w_t)·G_t +
//   r_tᵀ·dy_t
// Forward keeps the state every kCheckpoint tokens; backward recomputes the states inside each span from its
// checkpoint, so memory is O(T/16 · N²) per head instead of the chunked form's (chunk × chunk × N) tensors.
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "aviary/core/wkv.h"
#include "wkv_common.h"

namespace aviary {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int64_t kCheckpoint = 16;  // tokens between saved states
// Eight floats as one vector for the backward loop. The helpers are internal and always inlined into the
// AVX2/default clones, so the baseline build's note about vector-return ABI does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
using V8 = float __attribute__((vector_size(32)));
__attribute__((always_inline)) inline V8 load8(const float* p) {
    V8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
__attribute__((always_inline)) inline void store8(float* p, V8 v) {
    std::memcpy(p, &v, sizeof v);
}

// The library is built for baseline x86-64; the two loop bodies are also compiled for AVX2 and chosen at
// load time by GCC's function multiversioning (the decode engine does the same with separate files).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AVIARY_WKV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AVIARY_WKV_CLONES
#endif

struct Dims {
    int64_t B, T, H, N;
    int64_t spans() const { return (T + kCheckpoint - 1) / kCheckpoint; }
    int64_t row(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * N; }  // (b, t, h, :)
};

// S ← diag(w)·S + kᵀv for one token (the state advance without an output).
inline void advance(float* __restrict S, const float* __restrict k, const float* __restrict v,
                    const float* __restrict lw, int64_t N) {
    for (int64_t j = 0; j < N; ++j) {
        const float wj = std::exp(lw[j]), kj = k[j];
        float* __restrict Sj = S + j * N;
        for (int64_t i = 0; i < N; ++i) Sj[i] = wj * Sj[i] + kj * v[i];
    }
}

// One (sequence, head) of the forward pass. Built for AVX2 and baseline x86-64, picked at load time (ifunc).
AVIARY_WKV_CLONES void forward_one(const Dims& d, int64_t bh, const float* r, const float* k, const float* v,
                                   const float* lw, const float* u, const float* s0, float* y, float* s_out,
                                   float* ckpt) {
    const int64_t N = d.N, NN = N * N;
    {
        {
            const int64_t b = bh / d.H, h = bh % d.H;
            float* __restrict S = s_out + bh * NN;
            if (s0)
                std::copy(s0 + bh * NN, s0 + (bh + 1) * NN, S);
            else
                std::fill(S, S + NN, 0.0f);
            const float* uh = u + h * N;
            for (int64_t t = 0; t < d.T; ++t) {
                if (ckpt && t % kCheckpoint == 0) std::copy(S, S + NN, ckpt + (bh * d.spans() + t / kCheckpoint) * NN);
                const int64_t o = d.row(b, t, h);
                const float* __restrict rt = r + o, * __restrict kt = k + o, * __restrict vt = v + o, *lwt = lw + o;
                float* __restrict yt = y + o;
                float ruk = 0.0f;
                for (int64_t j = 0; j < N; ++j) ruk += rt[j] * uh[j] * kt[j];
                for (int64_t i = 0; i < N; ++i) yt[i] = ruk * vt[i];
                for (int64_t j = 0; j < N; ++j) {
                    const float rj = rt[j], kj = kt[j], wj = std::exp(lwt[j]);
                    float* __restrict Sj = S + j * N;
                    for (int64_t i = 0; i < N; ++i) {
                        yt[i] += rj * Sj[i];
                        Sj[i] = wj * Sj[i] + kj * vt[i];
                    }
                }
            }
        }
    }
}

void forward_loops(const Dims& d, const float* r, const float* k, const float* v, const float* lw, const float* u,
                   const float* s0, float* y, float* s_out, float* ckpt) {
    at::parallel_for(0, d.B * d.H, 1, [&](int64_t begin, int64_t end) {
        for (int64_t bh = begin; bh < end; ++bh) forward_one(d, bh, r, k, v, lw, u, s0, y, s_out, ckpt);
    });
}

// gs_out may be null (no gradient into the final state); gs0 may be null (not wanted). gu is (B, H, N).
// One (sequence, head) of the backward pass; G (N²) and states (kCheckpoint·N²) are scratch.
AVIARY_WKV_CLONES void backward_one(const Dims& d, int64_t bh, const float* r, const float* k, const float* v,
                                    const float* lw, const float* u, const float* ckpt, const float* gy,
                                    const float* gs_out, float* gr, float* gk, float* gv, float* glw, float* gu,
                                    float* gs0, std::vector<float>& G, std::vector<float>& states) {
    const int64_t N = d.N, NN = N * N;
    {
        {
            const int64_t b = bh / d.H, h = bh % d.H;
            if (gs_out)
                std::copy(gs_out + bh * NN, gs_out + (bh + 1) * NN, G.begin());
            else
                std::fill(G.begin(), G.end(), 0.0f);
            const float* uh = u + h * N;
            float* guh = gu + bh * N;
            std::fill(guh, guh + N, 0.0f);
            for (int64_t c = d.spans() - 1; c >= 0; --c) {
                const int64_t t0 = c * kCheckpoint, t1 = std::min(d.T, t0 + kCheckpoint);
                // states[t − t0] = S_{t−1}, the state each token of the span starts from
                std::copy(ckpt + (bh * d.spans() + c) * NN, ckpt + (bh * d.spans() + c + 1) * NN, states.begin());
                for (int64_t t = t0; t + 1 < t1; ++t) {
                    float* next = states.data() + (t - t0 + 1) * NN;
                    std::copy(states.data() + (t - t0) * NN, states.data() + (t - t0 + 1) * NN, next);
                    const int64_t o = d.row(b, t, h);
                    advance(next, k + o, v + o, lw + o, N);
                }
                for (int64_t t = t1 - 1; t >= t0; --t) {
                    const int64_t o = d.row(b, t, h);
                    const float* __restrict rt = r + o, * __restrict kt = k + o, * __restrict vt = v + o;
                    const float* __restrict lwt = lw + o, * __restrict dy = gy + o;
                    const float* __restrict Sp = states.data() + (t - t0) * NN;
                    float* __restrict grt = gr + o, * __restrict gkt = gk + o, * __restrict gvt = gv + o;
                    float* __restrict glwt = glw + o;
                    float dyv = 0.0f, ruk = 0.0f;
                    for (int64_t i = 0; i < N; ++i) dyv += dy[i] * vt[i];
                    for (int64_t j = 0; j < N; ++j) ruk += rt[j] * uh[j] * kt[j];
                    for (int64_t i = 0; i < N; ++i) gvt[i] = ruk * dy[i];
                    for (int64_t j = 0; j < N; ++j) {
                        const float rj = rt[j], kj = kt[j], wj = std::exp(lwt[j]);
                        float* __restrict Gj = G.data() + j * N;
                        const float* __restrict Spj = Sp + j * N;
                        // The three sums run in 8-lane vectors (GCC vector extensions: one AVX2 register in the
                        // avx2 clone, two SSE registers in the default one), so the loop is vectorised without
                        // -ffast-math, which a single float accumulator per sum would prevent.
                        V8 a_sdy = {}, a_gv = {}, a_gs = {};
                        int64_t i = 0;
                        for (; i + 8 <= N; i += 8) {
                            const V8 g = load8(Gj + i), sp = load8(Spj + i), dyi = load8(dy + i);
                            a_sdy += sp * dyi;
                            a_gv += g * load8(vt + i);
                            a_gs += g * sp;
                            store8(gvt + i, load8(gvt + i) + g * kj);
                            store8(Gj + i, wj * g + rj * dyi);  // G_{t−1}
                        }
                        float sdy = 0.0f, gvsum = 0.0f, gs = 0.0f;
                        for (int l = 0; l < 8; ++l) {
                            sdy += a_sdy[l];
                            gvsum += a_gv[l];
                            gs += a_gs[l];
                        }
                        for (; i < N; ++i) {
                            const float g = Gj[i];
                            sdy += Spj[i] * dy[i];
                            gvsum += g * vt[i];
                            gs += g * Spj[i];
                            gvt[i] += g * kj;
                            Gj[i] = wj * g + rj * dy[i];
                        }
                        grt[j] = uh[j] * kj * dyv + sdy;
                        gkt[j] = rj * uh[j] * dyv + gvsum;
                        glwt[j] = wj * gs;
                        guh[j] += rj * kj * dyv;
                    }
                }
            }
            if (gs0) std::copy(G.begin(), G.end(), gs0 + bh * NN);
        }
    }
}
#pragma GCC diagnostic pop

void backward_loops(const Dims& d, const float* r, const float* k, const float* v, const float* lw, const float* u,
                    const float* ckpt, const float* gy, const float* gs_out, float* gr, float* gk, float* gv,
                    float* glw, float* gu, float* gs0) {
    at::parallel_for(0, d.B * d.H, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> G(d.N * d.N), states(kCheckpoint * d.N * d.N);
        for (int64_t bh = begin; bh < end; ++bh)
            backward_one(d, bh, r, k, v, lw, u, ckpt, gy, gs_out, gr, gk, gv, glw, gu, gs0, G, states);
    });
}

struct Prepared {
    Dims d;
    at::Tensor r, k, v, lw, u, s0;  // fp32 contiguous; lw expanded to (B, T, H, N); s0 undefined = zeros
};

Prepared prepare(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_w,
                 const at::Tensor& u, const at::Tensor& state) {
    const bool has_state = state.defined() && state.numel() > 0;
    const auto s = detail::check_wkv_inputs(r, k, v, log_w, u, has_state ? state : at::Tensor());
    Prepared p;
    p.d = {s.B, s.T, s.H, s.N};
    p.r = r.to(at::kFloat).contiguous();
    p.k = k.to(at::kFloat).contiguous();
    p.v = v.to(at::kFloat).contiguous();
    p.lw = log_w.to(at::kFloat).expand({s.B, s.T, s.H, s.N}).contiguous();
    p.u = u.to(at::kFloat).contiguous();
    if (has_state) p.s0 = state.to(at::kFloat).contiguous();
    return p;
}

const float* ptr_or_null(const at::Tensor& t) {
    return t.defined() ? t.data_ptr<float>() : nullptr;
}

class WkvCpuFunction : public torch::autograd::Function<WkvCpuFunction> {
public:
    static tensor_list forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
        Prepared p = prepare(r, k, v, log_w, u, state);
        const auto& d = p.d;
        const auto f32 = r.options().dtype(at::kFloat);
        at::Tensor y = at::empty({d.B, d.T, d.H, d.N}, f32), s_out = at::empty({d.B, d.H, d.N, d.N}, f32);
        at::Tensor ckpt = at::empty({d.B, d.H, d.spans(), d.N, d.N}, f32);
        forward_loops(d, p.r.data_ptr<float>(), p.k.data_ptr<float>(), p.v.data_ptr<float>(), p.lw.data_ptr<float>(),
                      p.u.data_ptr<float>(), ptr_or_null(p.s0), y.data_ptr<float>(), s_out.data_ptr<float>(),
                      ckpt.data_ptr<float>());
        ctx->save_for_backward({p.r, p.k, p.v, p.lw, p.u, ckpt});
        ctx->saved_data["dtypes"] =
            std::vector<int64_t>{int64_t(r.scalar_type()),     int64_t(k.scalar_type()), int64_t(v.scalar_type()),
                                 int64_t(log_w.scalar_type()), int64_t(u.scalar_type()), int64_t(state.scalar_type())};
        ctx->saved_data["lw_shape"] = log_w.sizes().vec();
        ctx->saved_data["s_shape"] = state.sizes().vec();
        ctx->saved_data["has_state"] = state.numel() > 0;
        ctx->set_materialize_grads(false);
        return {y, s_out};
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grad_out) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &r = saved[0], &k = saved[1], &v = saved[2], &lw = saved[3], &u = saved[4], &ckpt = saved[5];
        const Dims d{r.size(0), r.size(1), r.size(2), r.size(3)};
        const auto f32 = r.options();
        const at::Tensor gy =
            grad_out[0].defined() ? grad_out[0].to(at::kFloat).contiguous() : at::zeros({d.B, d.T, d.H, d.N}, f32);
        const at::Tensor gs_out = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous() : at::Tensor();
        at::Tensor gr = at::empty_like(r), gk = at::empty_like(r), gv = at::empty_like(r), glw = at::empty_like(r);
        at::Tensor gu = at::empty({d.B, d.H, d.N}, f32);
        const bool want_gs0 = ctx->saved_data["has_state"].toBool() && ctx->needs_input_grad(5);
        at::Tensor gs0 = want_gs0 ? at::empty({d.B, d.H, d.N, d.N}, f32) : at::Tensor();
        backward_loops(d, r.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), lw.data_ptr<float>(),
                       u.data_ptr<float>(), ckpt.data_ptr<float>(), gy.data_ptr<float>(), ptr_or_null(gs_out),
                       gr.data_ptr<float>(), gk.data_ptr<float>(), gv.data_ptr<float>(), glw.data_ptr<float>(),
                       gu.data_ptr<float>(), want_gs0 ? gs0.data_ptr<float>() : nullptr);
        const auto dt = ctx->saved_data["dtypes"].toIntVector();
        auto as = [&](const at::Tensor& t, size_t i) { return t.to(static_cast<at::ScalarType>(dt[i])); };
        at::Tensor glw_in = at::sum_to(glw, ctx->saved_data["lw_shape"].toIntVector());  // undo the expand
        at::Tensor gs0_in;
        if (want_gs0) gs0_in = as(gs0.reshape(ctx->saved_data["s_shape"].toIntVector()), 5);
        return {as(gr, 0), as(gk, 1), as(gv, 2), as(glw_in, 3), as(gu.sum(0), 4), gs0_in};
    }
};

}  // namespace

std::pair<at::Tensor, at::Tensor> wkv_cpu(const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                          const at::Tensor& log_w, const at::Tensor& u, const at::Tensor& state) {
    AVIARY_CHECK(r.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu() && log_w.device().is_cpu() &&
                     u.device().is_cpu() && (!state.defined() || state.device().is_cpu()),
                 "wkv_cpu: every input must be a CPU tensor");
    const bool grad = at::GradMode::is_enabled() &&
                      (r.requires_grad() || k.requires_grad() || v.requires_grad() || log_w.requires_grad() ||
                       u.requires_grad() || (state.defined() && state.requires_grad()));
    if (!grad) {  // inference: no checkpoints, no graph
        Prepared p = prepare(r, k, v, log_w, u, state);
        const auto& d = p.d;
        const auto f32 = r.options().dtype(at::kFloat);
        at::Tensor y = at::empty({d.B, d.T, d.H, d.N}, f32), s_out = at::empty({d.B, d.H, d.N, d.N}, f32);
        forward_loops(d, p.r.data_ptr<float>(), p.k.data_ptr<float>(), p.v.data_ptr<float>(), p.lw.data_ptr<float>(),
                      p.u.data_ptr<float>(), ptr_or_null(p.s0), y.data_ptr<float>(), s_out.data_ptr<float>(), nullptr);
        return {y, s_out};
    }
    // autograd Functions take defined tensors: "no initial state" travels as an empty fp32 tensor
    const at::Tensor s = state.defined() ? state : at::empty({0}, r.options().dtype(at::kFloat));
    auto out = WkvCpuFunction::apply(r, k, v, log_w, u, s);
    return {out[0], out[1]};
}

}  // namespace aviary
