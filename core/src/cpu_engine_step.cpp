// The CPU engine's decode step (cpu_engine.h): one token per sequence through every layer (spec §2.3–§2.7), matrix-
// vector products split by rows over the pool with their element-wise epilogues fused, then the head.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "cpu_engine_impl.h"

namespace aviary {

void CpuEngine::Impl::size_rows(int64_t rows, std::initializer_list<std::vector<float>*> width_d,
                                std::initializer_list<std::vector<float>*> width_a, std::vector<float>& h5_rows,
                                std::vector<float>* delta_rows, std::vector<float>& dh_rows,
                                std::vector<float>& ffk_rows) const {
    const int64_t D = cfg.n_embd, A = cfg.n_att, F = cfg.ffn_dim;
    const int64_t Lm = std::max(cfg.mix_lora_rank, 1), Ld = std::max(cfg.decay_lora_rank, 1);
    for (auto* buf : width_d) buf->assign(rows * D, 0.0f);
    for (auto* buf : width_a) buf->assign(rows * A, 0.0f);
    h5_rows.assign(rows * 5 * Lm, 0.0f);
    if (delta_rows) delta_rows->assign(5 * rows * D, 0.0f);
    dh_rows.assign(rows * Ld, 0.0f);
    ffk_rows.assign(rows * F, 0.0f);
}

void CpuEngine::Impl::resize(int64_t B) {
    if (B == batch) return;
    batch = B;
    size_rows(B, {&x, &a, &d, &m0, &xw, &xk, &xv, &xr, &xg, &tmp, &ffr}, {&r, &k, &v, &g, &decay, &o}, h5, &delta, dh,
              ffk);
}

void CpuEngine::Impl::apply_epilogue(const Task& t, int64_t r0, int64_t r1) const {
    for (int64_t b = 0; b < batch; ++b) {
        float* y = t.y + b * t.y_stride;
        switch (t.epilogue) {
            case Epilogue::kStore:
                break;
            case Epilogue::kTanh:
                for (int64_t i = r0; i < r1; ++i) y[i] = cpu::tanh_approx(y[i]);
                break;
            case Epilogue::kSilu:
                for (int64_t i = r0; i < r1; ++i) y[i] = y[i] * sigmoid(y[i]);
                break;
            case Epilogue::kReluSq:
                for (int64_t i = r0; i < r1; ++i) {
                    const float s = std::max(y[i], 0.0f);
                    y[i] = s * s;
                }
                break;
            case Epilogue::kSigmoid:
                for (int64_t i = r0; i < r1; ++i) y[i] = sigmoid(y[i]);
                break;
            case Epilogue::kDecay:
                for (int64_t i = r0; i < r1; ++i) y[i] = exp_approx(-exp_approx(t.bias[i] + y[i]));
                break;
            case Epilogue::kAddTo: {
                float* dst = t.dst + b * t.y_stride;
                for (int64_t i = r0; i < r1; ++i) dst[i] += y[i];
                break;
            }
            case Epilogue::kAddMulTo: {
                float* dst = t.dst + b * t.y_stride;
                const float* mul = t.mul + b * t.y_stride;
                for (int64_t i = r0; i < r1; ++i) dst[i] += mul[i] * y[i];
                break;
            }
        }
    }
}

int CpuEngine::Impl::chunk_count(int64_t units, int64_t min_units) const {
    if (pool->size() == 1) return 1;
    const int64_t want = int64_t(pool->size()) * 4, most = std::max<int64_t>(1, units / min_units);
    return static_cast<int>(std::min(want, most));
}

void CpuEngine::Impl::run(const std::vector<Task>& list) {
    if (recorded) recorded->push_back(list);
    int64_t total = 0;
    for (const Task& t : list) total += t.w->rows;
    // One contiguous block of rows per thread (still claimed, so a thread that is late finds its block taken): each
    // thread streams one range with one prefetch ramp. Against four blocks per thread, steps interleaved in one
    // process, 2 threads: int8 0.1B +2–3 % tok/s, bf16 +0.5–1 %, fp32 unchanged (docs/BENCHMARKS.md, "Decode A/B step
    // by step, one block per thread").
    const int n = static_cast<int>(std::min<int64_t>(pool->size(), std::max<int64_t>(1, total / 16)));
    pool->run(n, [&](int chunk) {
        auto bound = [&](int i) { return i == n ? total : (total * i / n) / 16 * 16; };
        const int64_t lo = bound(chunk), hi = bound(chunk + 1);
        int64_t base = 0;
        for (const Task& t : list) {
            const int64_t r0 = std::max<int64_t>(lo - base, 0), r1 = std::min<int64_t>(hi - base, t.w->rows);
            if (r0 < r1) {
                kernels->matvec(*t.w, t.x, t.x_stride, batch, t.y, t.y_stride, r0, r1);
                apply_epilogue(t, r0, r1);
            }
            base += t.w->rows;
        }
    });
}

void CpuEngine::Impl::wkv_group_norm_gate(const Layer& L, float* S_all, const float* decay_base, int64_t decay_stride) {
    const int64_t H = cfg.n_head, N = cfg.head_size, A = cfg.n_att;
    const int64_t jobs = batch * H;
    const int n = chunk_count(jobs, 1);
    pool->run(n, [&](int chunk) {
        for (int64_t job = jobs * chunk / n; job < jobs * (chunk + 1) / n; ++job) {
            const int64_t b = job / H, h = job % H, off = b * A + h * N;
            float* y = o.data() + off;
            head_step(N, r.data() + off, k.data() + off, v.data() + off, L.u.data() + h * N,
                      decay_base + b * decay_stride + h * N, S_all + (b * H + h) * N * N, y, L.lnx_w.data() + h * N,
                      L.lnx_b.data() + h * N, g.data() + off);
        }
    });
}

void CpuEngine::Impl::layer(int l, State& state) {
    const Layer& L = layers[l];
    const int64_t B = batch, D = cfg.n_embd, A = cfg.n_att, Lm = cfg.mix_lora_rank, Ld = cfg.decay_lora_rank;
    float* att_shift = state.att_shift[l].data_ptr<float>();  // (B, D)
    float* ffn_shift = state.ffn_shift[l].data_ptr<float>();  // (B, D)
    float* S = state.wkv[l].data_ptr<float>();                // (B, H, N, N)
    // ---- time mix ----
    for (int64_t b = 0; b < B; ++b) {
        float *ab = a.data() + b * D, *db = d.data() + b * D, *prev = att_shift + b * D;
        layer_norm(x.data() + b * D, L.ln1_w.data(), L.ln1_b.data(), D, ab);  // a = LN1(x)
        for (int64_t i = 0; i < D; ++i) {
            db[i] = prev[i] - ab[i];  // d = a_{t−1} − a_t
            prev[i] = ab[i];          // the state keeps the LN1 output (spec §2.7)
        }
    }
    int64_t decay_stride = 0;
    const float* decay_ptr = L.decay.data();
    if (cfg.version == 6) {
        // m0 = a + d·μ_x; h = tanh(m0·W1) (B, 5·Lm); δ_c = h_c·W2[c] (5, B, D)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < D; ++i) m0[b * D + i] = a[b * D + i] + d[b * D + i] * L.m_x[i];
        run({{&L.maa_w1t, m0.data(), D, h5.data(), 5 * Lm, Epilogue::kTanh}});
        run({{&L.maa_w2t[0], h5.data() + 0 * Lm, 5 * Lm, delta.data() + 0 * B * D, D},
             {&L.maa_w2t[1], h5.data() + 1 * Lm, 5 * Lm, delta.data() + 1 * B * D, D},
             {&L.maa_w2t[2], h5.data() + 2 * Lm, 5 * Lm, delta.data() + 2 * B * D, D},
             {&L.maa_w2t[3], h5.data() + 3 * Lm, 5 * Lm, delta.data() + 3 * B * D, D},
             {&L.maa_w2t[4], h5.data() + 4 * Lm, 5 * Lm, delta.data() + 4 * B * D, D}});
        // x_c = a + d·(μ_c + δ_c), c in w, k, v, r, g
        for (int64_t b = 0; b < B; ++b) {
            const float *ab = a.data() + b * D, *db = d.data() + b * D;
            const float* dl[5];
            for (int c = 0; c < 5; ++c) dl[c] = delta.data() + c * B * D + b * D;
            for (int64_t i = 0; i < D; ++i) {
                const int64_t j = b * D + i;
                xw[j] = ab[i] + db[i] * (L.m_w[i] + dl[0][i]);
                xk[j] = ab[i] + db[i] * (L.m_k[i] + dl[1][i]);
                xv[j] = ab[i] + db[i] * (L.m_v[i] + dl[2][i]);
                xr[j] = ab[i] + db[i] * (L.m_r[i] + dl[3][i]);
                xg[j] = ab[i] + db[i] * (L.m_g[i] + dl[4][i]);
            }
        }
        // decay = exp(−exp(time_decay + tanh(x_w·Dw1)·Dw2))   (B, A)
        run({{&L.decay_w1t, xw.data(), D, dh.data(), Ld, Epilogue::kTanh}});
        run({{&L.decay_w2t, dh.data(), Ld, decay.data(), A, Epilogue::kDecay, L.decay.data()}});
        decay_stride = A;
        decay_ptr = decay.data();
    } else {
        // x_c = a·μ_c + prev·(1 − μ_c) = a + d·(1 − μ_c)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < D; ++i) {
                const int64_t j = b * D + i;
                xk[j] = a[j] + d[j] * L.m_k[i];
                xv[j] = a[j] + d[j] * L.m_v[i];
                xr[j] = a[j] + d[j] * L.m_r[i];
                xg[j] = a[j] + d[j] * L.m_g[i];
            }
    }
    // r, k, v = W x; g = SiLU(W_g x_g)
    run({{&L.att_r, xr.data(), D, r.data(), A},
         {&L.att_k, xk.data(), D, k.data(), A},
         {&L.att_v, xv.data(), D, v.data(), A},
         {&L.att_g, xg.data(), D, g.data(), A, Epilogue::kSilu}});
    wkv_group_norm_gate(L, S, decay_ptr, decay_stride);
    // x += W_o o
    run({{&L.att_o, o.data(), A, tmp.data(), D, Epilogue::kAddTo, nullptr, x.data()}});
    // ---- channel mix ----
    for (int64_t b = 0; b < B; ++b) {
        float *bb = a.data() + b * D, *prev = ffn_shift + b * D;
        layer_norm(x.data() + b * D, L.ln2_w.data(), L.ln2_b.data(), D, bb);  // b = LN2(x)
        for (int64_t i = 0; i < D; ++i) {
            const float di = prev[i] - bb[i];
            xk[b * D + i] = bb[i] + di * L.ffn_m_k[i];
            xr[b * D + i] = bb[i] + di * L.ffn_m_r[i];
            prev[i] = bb[i];
        }
    }
    // κ = relu(W_k x_k)²; x += σ(W_r x_r) ⊙ (W_v κ)
    const int64_t F = cfg.ffn_dim;
    run({{&L.ffn_k, xk.data(), D, ffk.data(), F, Epilogue::kReluSq},
         {&L.ffn_r, xr.data(), D, ffr.data(), D, Epilogue::kSigmoid}});
    run({{&L.ffn_v, ffk.data(), F, tmp.data(), D, Epilogue::kAddMulTo, nullptr, x.data(), ffr.data()}});
}

void CpuEngine::Impl::prepare_state(State& state, int64_t B) {
    AVIARY_CHECK(state.n_layer() == cfg.n_layer, "state has ", state.n_layer(), " layers, the model has ", cfg.n_layer);
    auto fix = [&](at::Tensor& t, std::initializer_list<int64_t> shape, const char* what) {
        AVIARY_CHECK(t.sizes() == at::IntArrayRef(shape), "state ", what, " has shape ", t.sizes(),
                     ", the engine expects ", at::IntArrayRef(shape));
        if (!t.is_cpu() || t.scalar_type() != at::kFloat || !t.is_contiguous())
            t = t.detach().to(at::kCPU, at::kFloat).contiguous();
    };
    for (int l = 0; l < cfg.n_layer; ++l) {
        fix(state.att_shift[l], {B, cfg.n_embd}, "att_shift");
        fix(state.ffn_shift[l], {B, cfg.n_embd}, "ffn_shift");
        fix(state.wkv[l], {B, cfg.n_head, cfg.head_size, cfg.head_size}, "wkv");
    }
}

void CpuEngine::Impl::step(const int64_t* tokens, int64_t B, State& state, float* logits) {
    AVIARY_CHECK(B >= 1, "CpuEngine::step: batch must be >= 1");
    for (int64_t b = 0; b < B; ++b)
        AVIARY_CHECK(tokens[b] >= 0 && tokens[b] < cfg.vocab_size, "token id ", tokens[b],
                     " is out of range (vocabulary size ", cfg.vocab_size, ")");
    prepare_state(state, B);
    resize(B);
    const int64_t D = cfg.n_embd;
    // x = LN0(emb[token])
    for (int64_t b = 0; b < B; ++b) {
        embedding_row(tokens[b], tmp.data() + b * D);
        layer_norm(tmp.data() + b * D, ln0_w.data(), ln0_b.data(), D, x.data() + b * D);
    }
    for (int l = 0; l < cfg.n_layer; ++l) layer(l, state);
    // logits = head · LN_out(x)
    for (int64_t b = 0; b < B; ++b) layer_norm(x.data() + b * D, ln_out_w.data(), ln_out_b.data(), D, a.data() + b * D);
    run({{&head, a.data(), D, logits, cfg.vocab_size}});
}

at::Tensor CpuEngine::step(const at::Tensor& tokens, State& state) {
    AVIARY_CHECK(tokens.dim() == 1, "CpuEngine::step takes one token per sequence, shape (B), got ", tokens.sizes());
    const at::Tensor ids = tokens.to(at::kCPU, at::kLong).contiguous();
    at::Tensor logits = at::empty({ids.size(0), impl_->cfg.vocab_size}, at::kFloat);
    step(ids.data_ptr<int64_t>(), ids.size(0), state, logits.data_ptr<float>());
    return logits;
}

void CpuEngine::step(const int64_t* tokens, int64_t batch, State& state, float* logits) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->step(tokens, batch, state, logits);
}

}  // namespace aviary
