// The CPU decode engine (cpu_engine.h): the RNN step of spec §2.7 for x052 (§2.3) and x060 (§2.4), WKV recurrence
// §2.5.1, channel mix §2.6, fp32 placement §2.8. Same formulas as Model::step (model.cpp), which is its test oracle;
// the structure (one pass per layer over preallocated buffers, matrix-vector products split by rows over a thread
// pool, element-wise work fused into the products' epilogues or into one loop per stage) follows rwkv.cpp's RNN
// graph and the official single-file demos (CR RWKV_v5_demo.py / RWKV_v6_demo.py), not their code.
#include "aviary/core/cpu_engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <initializer_list>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_gemm.h"
#include "aviary/core/cpu_engine_pool.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "aviary/core/vec_math.h"

namespace aviary {
namespace {

using cpu::MatView;
using cpu::WeightType;

constexpr float kLayerNormEps = 1e-5f;
constexpr float kGroupNormEps = 64e-5f;  // = eps 1e-5 on x / head_size_divisor 8 (spec §2.2)

// What a matrix-vector task does with each dot product s of row r, batch item b.
enum class Epilogue {
    kStore,     // y = s
    kTanh,      // y = tanh(s)                       (LoRA down-projections)
    kSilu,      // y = s·σ(s)                        (gate)
    kReluSq,    // y = max(s, 0)²                    (channel-mix key)
    kSigmoid,   // y = σ(s)                          (channel-mix receptance)
    kDecay,     // y = exp(−exp(bias[r] + s))        (v6 dynamic decay)
    kAddTo,     // dst += s                          (residual add of att.output)
    kAddMulTo,  // dst += mul·s                      (residual add of σ(r)·(W_v κ))
};

struct Task {
    const MatView* w;
    const float* x;
    int64_t x_stride;
    float* y;  // the raw products (and the result for the in-place epilogues)
    int64_t y_stride;
    Epilogue epilogue = Epilogue::kStore;
    const float* bias = nullptr;  // kDecay: (rows)
    float* dst = nullptr;         // kAddTo / kAddMulTo, same stride as y
    const float* mul = nullptr;   // kAddMulTo, same stride as y
};

// Vectorisable e^x, σ and tanh (vec_math.h: ≤ 1.2 ulp; tanh ≤ 2.7e-7 relative): the element-wise epilogues run them on
// every product's output.
using cpu::exp_approx;
inline float sigmoid(float s) {
    return cpu::sigmoid_approx(s);
}

// LayerNorm over n values: (x − mean)/sqrt(var + eps)·w + b, biased variance (PyTorch's).
void layer_norm(const float* x, const float* w, const float* b, int64_t n, float* out) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    double var = 0;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

// The per-head loops below (WKV step, GroupNorm + gate) are built for AVX-512, AVX2 and baseline x86-64 from one body
// each; an engine uses the version of its kernel set (CpuEngineOptions::kernels, chosen by cpuid), so the library
// itself stays baseline and the tests that run every kernel set run every version. Every element is computed in the
// same order in every version (no FMA contraction in ISO C++ mode): the versions agree bit for bit.
#define AVIARY_ALWAYS_INLINE inline __attribute__((always_inline))

// One token of one head (spec §2.5.1), S is [key j][value i]:
//   y_i = Σ_j r_j·(u_j·k_j·v_i + S_ji);  S_ji ← decay_j·S_ji + k_j·v_i
AVIARY_ALWAYS_INLINE void wkv_token_body(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                                         const float* dd, float* S, float* y) {
    std::fill_n(y, N, 0.0f);
    for (int64_t j = 0; j < N; ++j) {
        const float rj = rr[j], kj = kk[j], ukj = uu[j] * kj, dj = dd[j];
        float* Sj = S + j * N;
        for (int64_t i = 0; i < N; ++i) {
            y[i] += rj * (ukj * vv[i] + Sj[i]);
            Sj[i] = dj * Sj[i] + kj * vv[i];
        }
    }
}

// GroupNorm of one head's output (eps 64e-5, spec §2.2) times the gate: y = ((y − μ)/σ·w + b) ⊙ g.
AVIARY_ALWAYS_INLINE void group_norm_gate_body(int64_t N, float* y, const float* gw, const float* gb, const float* gg) {
    float mean = 0, var = 0;
    for (int64_t i = 0; i < N; ++i) mean += y[i];
    mean /= N;
    for (int64_t i = 0; i < N; ++i) var += (y[i] - mean) * (y[i] - mean);
    var /= N;
    const float inv = 1.0f / std::sqrt(var + kGroupNormEps);
    for (int64_t i = 0; i < N; ++i) y[i] = ((y[i] - mean) * inv * gw[i] + gb[i]) * gg[i];
}

// One token of one head, then its GroupNorm and gate.
using HeadStepFn = void (*)(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                            const float* dd, float* S, float* y, const float* gw, const float* gb, const float* gg);
#define AVIARY_HEAD_STEP(NAME, ATTR)                                                                               \
    ATTR void NAME(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu, const float* dd, \
                   float* S, float* y, const float* gw, const float* gb, const float* gg) {                        \
        wkv_token_body(N, rr, kk, vv, uu, dd, S, y);                                                               \
        group_norm_gate_body(N, y, gw, gb, gg);                                                                    \
    }
AVIARY_HEAD_STEP(head_step_base, )
#if defined(__x86_64__) && defined(__GNUC__)
AVIARY_HEAD_STEP(head_step_avx2, __attribute__((target("avx2"))))
AVIARY_HEAD_STEP(head_step_avx512, __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2"))))
#endif

// The version for a kernel set ("avx512", "avx2", else baseline); the set's own check ensures the CPU has it.
HeadStepFn head_step_for(const std::string& kernel_set) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_set == "avx512") return &head_step_avx512;
    if (kernel_set == "avx2") return &head_step_avx2;
#endif
    return &head_step_base;
}

std::vector<float> to_vector(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

struct Layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b, lnx_w, lnx_b;
    // Static token-shift weights on d = prev − a: x_c = a + d·m_c. v5: m_c = 1 − time_mix_c (spec §2.3 rewritten);
    // v6: m_c = time_maa_c (+ the LoRA δ_c at run time; §2.4).
    std::vector<float> m_x, m_w, m_k, m_v, m_r, m_g;
    std::vector<float> ffn_m_k, ffn_m_r;
    std::vector<float> decay;      // v5: exp(−exp(time_decay)) (A); v6: time_decay (A), the static part of w_raw
    std::vector<float> u;          // time_faaaa (A)
    MatView maa_w1t;               // v6: (5·Lm, D) = time_maa_w1ᵀ
    MatView maa_w2t[5];            // v6: (D, Lm) = time_maa_w2[c]ᵀ, c in w, k, v, r, g
    MatView decay_w1t, decay_w2t;  // v6: (Ld, D), (A, Ld)
    MatView att_r, att_k, att_v, att_g, att_o, ffn_k, ffn_r, ffn_v;
};

}  // namespace

struct CpuEngine::Impl {
    std::mutex mutex;  // one step at a time (the work buffers are shared)
    ModelConfig cfg;
    std::string dtype;
    const cpu::KernelSet* kernels = nullptr;
    HeadStepFn head_step = &head_step_base;  // WKV + GroupNorm + gate of one head and token, in the kernels' ISA
    std::unique_ptr<cpu::ThreadPool> pool;
    std::vector<at::Tensor> keep;  // storage behind every MatView
    std::vector<Layer> layers;
    std::vector<float> ln0_w, ln0_b, ln_out_w, ln_out_b;
    MatView emb, head;
    double bytes_per_token = 0;
    double prefill_flops_per_token = 0;

    // Work buffers for the current batch (resized when the batch changes).
    int64_t batch = 0;
    std::vector<float> x, a, d, m0, h5, delta, dh, xw, xk, xv, xr, xg, r, k, v, g, decay, o, tmp, ffk, ffr;

    // ---- weights ----
    const at::Tensor& tensor(const std::map<std::string, at::Tensor>& sd, const std::string& name) {
        auto it = sd.find(name);
        AVIARY_CHECK(it != sd.end(), "CpuEngine: the model has no tensor '", name, "'");
        return it->second;
    }

    // A big matrix (out, in) in the engine's weight format.
    MatView matrix(const at::Tensor& t0) {
        at::Tensor t = t0.detach();
        AVIARY_CHECK(t.dim() == 2, "CpuEngine: expected a matrix, got shape ", t.sizes());
        MatView m;
        m.rows = t.size(0);
        m.cols = t.size(1);
        if (dtype == "fp32") {
            at::Tensor f = t.to(at::kFloat).contiguous();  // the model's own fp32 matrix when it is one: no copy
            m.type = WeightType::F32;
            m.data = f.data_ptr<float>();
            keep.push_back(f);
            bytes_per_token += m.rows * m.cols * 4.0;
        } else if (dtype == "bf16") {
            at::Tensor h = t.to(at::kBFloat16).contiguous();
            m.type = WeightType::BF16;
            m.data = h.data_ptr();
            keep.push_back(h);
            bytes_per_token += m.rows * m.cols * 2.0;
        } else {
            at::Tensor f = t.to(at::kFloat).contiguous();
            at::Tensor q = at::empty({m.rows, m.cols}, at::kChar);
            at::Tensor s = at::empty({m.rows}, at::kFloat);
            cpu::quantize_rows_int8(f.data_ptr<float>(), m.rows, m.cols, q.data_ptr<int8_t>(), s.data_ptr<float>());
            m.type = WeightType::I8;
            m.data = q.data_ptr<int8_t>();
            m.scale = s.data_ptr<float>();
            keep.push_back(q);
            keep.push_back(s);
            bytes_per_token += m.rows * m.cols + m.rows * 4.0;
        }
        return m;
    }

    // A small fp32 matrix (LoRAs: kept fp32 in every format, spec §2.8).
    MatView small_matrix(const at::Tensor& t0) {
        at::Tensor f = t0.detach().to(at::kFloat).contiguous();
        MatView m;
        m.type = WeightType::F32;
        m.rows = f.size(0);
        m.cols = f.size(1);
        m.data = f.data_ptr<float>();
        keep.push_back(f);
        bytes_per_token += m.rows * m.cols * 4.0;
        return m;
    }

    void load(const Model& model) {
        std::map<std::string, at::Tensor> sd;
        for (const auto& nt : model.state_dict()) sd[nt.name] = nt.tensor;
        const int64_t D = cfg.n_embd, A = cfg.n_att;
        for (int l = 0; l < cfg.n_layer; ++l) {
            const std::string p = "blocks." + std::to_string(l) + ".";
            auto T = [&](const std::string& n) -> const at::Tensor& { return tensor(sd, p + n); };
            Layer L;
            L.ln1_w = to_vector(T("ln1.weight"));
            L.ln1_b = to_vector(T("ln1.bias"));
            L.ln2_w = to_vector(T("ln2.weight"));
            L.ln2_b = to_vector(T("ln2.bias"));
            L.lnx_w = to_vector(T("att.ln_x.weight"));
            L.lnx_b = to_vector(T("att.ln_x.bias"));
            L.u = to_vector(T("att.time_faaaa"));
            if (cfg.version == 5) {
                auto one_minus = [&](const std::string& n) { return to_vector(1.0 - T(n).to(at::kFloat)); };
                L.m_k = one_minus("att.time_mix_k");
                L.m_v = one_minus("att.time_mix_v");
                L.m_r = one_minus("att.time_mix_r");
                L.m_g = one_minus("att.time_mix_g");
                L.ffn_m_k = one_minus("ffn.time_mix_k");
                L.ffn_m_r = one_minus("ffn.time_mix_r");
                // decay = exp(−exp(time_decay)), static per channel (spec §2.3)
                L.decay = to_vector(at::exp(-at::exp(T("att.time_decay").to(at::kFloat))));
            } else {
                L.m_x = to_vector(T("att.time_maa_x"));
                L.m_w = to_vector(T("att.time_maa_w"));
                L.m_k = to_vector(T("att.time_maa_k"));
                L.m_v = to_vector(T("att.time_maa_v"));
                L.m_r = to_vector(T("att.time_maa_r"));
                L.m_g = to_vector(T("att.time_maa_g"));
                L.ffn_m_k = to_vector(T("ffn.time_maa_k"));
                L.ffn_m_r = to_vector(T("ffn.time_maa_r"));
                L.decay = to_vector(T("att.time_decay"));
                // LoRAs are stored (in, out) (spec §1.3): transpose to (out, in) rows for the kernels.
                L.maa_w1t = small_matrix(T("att.time_maa_w1").t());
                const at::Tensor w2 = T("att.time_maa_w2");  // (5, Lm, D)
                for (int c = 0; c < 5; ++c) L.maa_w2t[c] = small_matrix(w2[c].t());
                L.decay_w1t = small_matrix(T("att.time_decay_w1").t());
                L.decay_w2t = small_matrix(T("att.time_decay_w2").t());
            }
            L.att_r = matrix(T("att.receptance.weight"));
            L.att_k = matrix(T("att.key.weight"));
            L.att_v = matrix(T("att.value.weight"));
            L.att_g = matrix(T("att.gate.weight"));
            L.att_o = matrix(T("att.output.weight"));
            L.ffn_k = matrix(T("ffn.key.weight"));
            L.ffn_r = matrix(T("ffn.receptance.weight"));
            L.ffn_v = matrix(T("ffn.value.weight"));
            bytes_per_token += 4.0 * (6 * D + 4 * A + 8 * D);  // norms, mixes, decay, u (read each step)
            layers.push_back(std::move(L));
        }
        prefill_flops_per_token = sequence_flops_per_token(cfg);  // config.h
        ln0_w = to_vector(tensor(sd, "blocks.0.ln0.weight"));
        ln0_b = to_vector(tensor(sd, "blocks.0.ln0.bias"));
        ln_out_w = to_vector(tensor(sd, "ln_out.weight"));
        ln_out_b = to_vector(tensor(sd, "ln_out.bias"));
        head = matrix(tensor(sd, "head.weight"));
        const double before = bytes_per_token;
        emb = matrix(tensor(sd, "emb.weight"));
        // One embedding row per token, not the table.
        bytes_per_token = before + (bytes_per_token - before) / static_cast<double>(emb.rows);
    }

    // The embedding row of `token` in fp32.
    void embedding_row(int64_t token, float* out) const {
        const int64_t D = emb.cols, off = token * D;
        switch (emb.type) {
            case WeightType::F32:
                std::copy_n(static_cast<const float*>(emb.data) + off, D, out);
                break;
            case WeightType::BF16:
                for (int64_t i = 0; i < D; ++i)
                    out[i] = cpu::bf16_to_fp32(static_cast<const uint16_t*>(emb.data)[off + i]);
                break;
            case WeightType::I8:
                for (int64_t i = 0; i < D; ++i)
                    out[i] = static_cast<const int8_t*>(emb.data)[off + i] * emb.scale[token];
                break;
        }
    }

    // Sizes one set of per-row buffers (decode: a row per sequence; prefill: a row per token of the chunk), zeroed.
    void size_rows(int64_t rows, std::initializer_list<std::vector<float>*> width_d,
                   std::initializer_list<std::vector<float>*> width_a, std::vector<float>& h5_rows,
                   std::vector<float>& delta_rows, std::vector<float>& dh_rows, std::vector<float>& ffk_rows) const {
        const int64_t D = cfg.n_embd, A = cfg.n_att, F = cfg.ffn_dim;
        const int64_t Lm = std::max(cfg.mix_lora_rank, 1), Ld = std::max(cfg.decay_lora_rank, 1);
        for (auto* buf : width_d) buf->assign(rows * D, 0.0f);
        for (auto* buf : width_a) buf->assign(rows * A, 0.0f);
        h5_rows.assign(rows * 5 * Lm, 0.0f);
        delta_rows.assign(5 * rows * D, 0.0f);
        dh_rows.assign(rows * Ld, 0.0f);
        ffk_rows.assign(rows * F, 0.0f);
    }

    void resize(int64_t B) {
        if (B == batch) return;
        batch = B;
        size_rows(B, {&x, &a, &d, &m0, &xw, &xk, &xv, &xr, &xg, &tmp, &ffr}, {&r, &k, &v, &g, &decay, &o}, h5, delta,
                  dh, ffk);
    }

    // ---- parallel pieces ----
    void apply_epilogue(const Task& t, int64_t r0, int64_t r1) const {
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

    // Chunks for a job of `units` work units: a few per thread so that a thread that is descheduled or slow leaves
    // its share to the others (cpu_engine_pool.h), but no chunk smaller than `min_units`.
    int chunk_count(int64_t units, int64_t min_units) const {
        if (pool->size() == 1) return 1;
        const int64_t want = int64_t(pool->size()) * 4, most = std::max<int64_t>(1, units / min_units);
        return static_cast<int>(std::min(want, most));
    }

    // Runs the tasks as one job: their rows, laid end to end, are cut into chunks (multiples of 16 rows).
    void run(std::initializer_list<Task> tasks) { run(std::vector<Task>(tasks)); }
    void run(const std::vector<Task>& list) {
        int64_t total = 0;
        for (const Task& t : list) total += t.w->rows;
        const int n = chunk_count(total, 16);
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

    // WKV (spec §2.5.1) for every (sequence, head), then GroupNorm over the head (eps 64e-5) and the gate:
    // o = GroupNorm(y) ⊙ g. S is [b][h][key j][value i].
    void wkv_group_norm_gate(const Layer& L, float* S_all, const float* decay_base, int64_t decay_stride) {
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

    void layer(int l, State& state) {
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

    // ---- prefill (sequence mode): blocks of up to prefill_chunk tokens of one sequence ----
    // The matrices run as GEMMs over the block's rows (gemm() below: single-threaded products on row blocks of W
    // claimed by the pool, bf16 / int8 rows widened per block, element-wise epilogues applied per block), the other
    // element-wise parts are fused loops over rows, and the WKV runs token by token per head (its cost, T·H·N² per
    // layer, is ~1 % of the GEMMs at head size 64).
    int64_t prefill_chunk = 256;
    enum class GemmPath { kOneDnn, kBlas, kLibTorch };
    GemmPath gemm_path = GemmPath::kBlas;  // for the bf16 / int8 matrices (fp32 ones: kBlas, or kLibTorch if forced)
    SgemmRowMajorFn sgemm = blas_sgemm_row_major();  // the BLAS's own row-major sgemm; nullptr: at::mm_out
    std::vector<uint16_t> gemm_xb;                   // X in bf16 (onednn-bf16)
    std::vector<int8_t> gemm_xq;                     // X as int8 codes (onednn-int8)
    std::vector<float> gemm_xs;                      // their scale per row
    // Weight-row blocks per thread in a prefill GEMM: more blocks shorten the wait for the last one (the threads
    // claim blocks dynamically), fewer keep each product larger. $AVIARY_GEMM_BLOCKS overrides (measurements).
    // fp32 matrices (the LoRAs of a bf16/int8 engine) on oneDNN's fp32 kernels too ($AVIARY_LORA_GEMM=blas: the BLAS)
    bool f32_on_onednn = [] {
        const char* env = std::getenv("AVIARY_LORA_GEMM");
        return !(env && std::string(env) == "blas");
    }();
    int gemm_blocks_per_thread = [] {
        const char* env = std::getenv("AVIARY_GEMM_BLOCKS");
        return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
    }();

    void choose_gemm_path(const std::string& option) {
        const std::string path = prefill_gemm_path(dtype, option);
        gemm_path = path == "onednn" ? GemmPath::kOneDnn : path == "libtorch" ? GemmPath::kLibTorch : GemmPath::kBlas;
        if (gemm_path == GemmPath::kLibTorch) sgemm = nullptr;
    }

    std::string gemm_name() const {
        if (gemm_path == GemmPath::kOneDnn && dtype != "fp32") return "onednn-" + dtype;
        return sgemm ? "blas" : "libtorch";
    }

    int64_t prefill_rows = 0;  // rows the buffers below hold
    std::vector<float> px, pa, pd, pm0, ph5, pdel, pdh, pxw, pxk, pxv, pxr, pxg, pr, pk, pv, pg, pdec, po, ptmp, pffk,
        pffr;

    void prefill_resize(int64_t T) {
        if (T <= prefill_rows) return;
        prefill_rows = T;
        size_rows(T, {&px, &pa, &pd, &pm0, &pxw, &pxk, &pxv, &pxr, &pxg, &ptmp, &pffr},
                  {&pr, &pk, &pv, &pg, &pdec, &po}, ph5, pdel, pdh, pffk);
    }

    // fn(t0, t1) over [0, T) split across the pool.
    template <class Fn>
    void for_rows(int64_t T, Fn&& fn) {
        const int n = chunk_count(T, 4);
        pool->run(n, [&](int c) { fn(T * c / n, T * (c + 1) / n); });
    }

    // Row r of a bf16 / int8 matrix widened to fp32 (inline: a plain loop the compiler vectorises).
    static void widen_row(const MatView& w, int64_t r, float* out) {
        const int64_t cols = w.cols;
        if (w.type == WeightType::BF16) {
            const uint16_t* in = static_cast<const uint16_t*>(w.data) + r * cols;
            for (int64_t c = 0; c < cols; ++c) {
                const uint32_t bits = uint32_t(in[c]) << 16;
                std::memcpy(out + c, &bits, sizeof(float));
            }
        } else {
            const int8_t* in = static_cast<const int8_t*>(w.data) + r * cols;
            const float sc = w.scale[r];
            for (int64_t c = 0; c < cols; ++c) out[c] = float(in[c]) * sc;
        }
    }

    // Rows [r0, r1) of the matrix in fp32: its own data, or widened into the calling thread's scratch.
    static const float* widen_rows(const MatView& w, int64_t r0, int64_t r1) {
        const int64_t cols = w.cols;
        if (w.type == WeightType::F32) return static_cast<const float*>(w.data) + r0 * cols;
        thread_local std::vector<float> scratch;
        if (scratch.size() < size_t((r1 - r0) * cols)) scratch.resize(size_t((r1 - r0) * cols));
        for (int64_t r = r0; r < r1; ++r) widen_row(w, r, scratch.data() + (r - r0) * cols);
        return scratch.data();
    }

    struct NoEpilogue {};

    // Y (T, w.rows), row-major = X (T, w.cols; row stride x_stride) · wᵀ, then Y[j] ← post(Y[j], j, i) for every flat
    // index j = t·w.rows + i (i: the weight row) unless post is NoEpilogue. The output columns = weight rows are cut
    // into blocks that the pool's threads claim; each block is one single-threaded product (prefill() holds a
    // BlasSingleThreadScope) on its rows of W, writing its columns of Y in place, followed by `post` on the block while
    // it is still in cache. So the weights are read once, by one thread, no BLAS worker competes with the pool, and the
    // element-wise step costs no pass of its own. The product of a block:
    //  - onednn (bf16 / int8 matrices): X converted once per GEMM (bf16, or int8 codes with one scale per token), the
    //    block through oneDNN on the matrix units; int8 rows are then scaled by their token's scale;
    //  - blas / libtorch: bf16 / int8 rows widened into the thread's scratch, then the BLAS's cblas_sgemm (measured
    //    ~15 % faster than going through LibTorch) or at::mm_out.
    template <class Post = NoEpilogue>
    void gemm(const MatView& w, const float* X, int64_t T, int64_t x_stride, float* Y, Post&& post = Post{}) {
        const int64_t rows = w.rows, cols = w.cols;
        const bool dnn = gemm_path == GemmPath::kOneDnn && (w.type != WeightType::F32 || f32_on_onednn);
        if (dnn && w.type == WeightType::F32) {
            // fp32 (the LoRAs): X as it is
        } else if (dnn && w.type == WeightType::BF16) {
            if (gemm_xb.size() < size_t(T * cols)) gemm_xb.resize(size_t(T * cols));
            for_rows(T, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t) cpu::round_to_bf16(X + t * x_stride, cols, &gemm_xb[t * cols]);
            });
        } else if (dnn) {
            if (gemm_xq.size() < size_t(T * cols)) gemm_xq.resize(size_t(T * cols));
            if (gemm_xs.size() < size_t(T)) gemm_xs.resize(size_t(T));
            for_rows(T, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t)
                    cpu::quantize_rows_int8(X + t * x_stride, 1, cols, &gemm_xq[t * cols], &gemm_xs[t]);
            });
        }
        const at::Tensor xt = at::from_blob(const_cast<float*>(X), {T, cols}, {x_stride, 1}, at::kFloat);
        const int n = std::min(chunk_count(rows, 64), pool->size() * gemm_blocks_per_thread);
        pool->run(n, [&](int c) {
            auto bound = [&](int i) { return i == n ? rows : (rows * i / n) / 16 * 16; };
            const int64_t r0 = bound(c), r1 = bound(c + 1);
            if (r0 >= r1) return;
            if (dnn) {
                // dense block in the thread's scratch (oneDNN's AMX kernels need ldy == N), then scaled (int8) and
                // passed through `post` into Y in one pass
                const int64_t nb = r1 - r0;
                thread_local std::vector<float> block;
                if (block.size() < size_t(T * nb)) block.resize(size_t(T * nb));
                const bool bf16 = w.type != WeightType::I8;  // bf16 or fp32: no scales
                if (w.type == WeightType::F32)
                    cpu::gemm_f32_onednn(X, T, cols, x_stride, static_cast<const float*>(w.data) + r0 * cols, nb,
                                         block.data(), nb);
                else if (bf16)
                    cpu::gemm_bf16_onednn(gemm_xb.data(), T, cols, cols,
                                          static_cast<const uint16_t*>(w.data) + r0 * cols, nb, block.data(), nb);
                else
                    cpu::gemm_int8_onednn(gemm_xq.data(), T, cols, cols, static_cast<const int8_t*>(w.data) + r0 * cols,
                                          nb, block.data(), nb);
                const float* ws = bf16 ? nullptr : w.scale + r0;
                for (int64_t t = 0; t < T; ++t) {
                    const float* b = block.data() + t * nb;
                    float* y = Y + t * rows + r0;
                    const int64_t j0 = t * rows + r0;
                    const float xs = bf16 ? 1.0f : gemm_xs[t];
                    if constexpr (std::is_same_v<std::decay_t<Post>, NoEpilogue>) {
                        if (bf16)
                            std::copy_n(b, nb, y);
                        else
                            for (int64_t i = 0; i < nb; ++i) y[i] = (b[i] * xs) * ws[i];
                    } else {
                        if (bf16)
                            for (int64_t i = 0; i < nb; ++i) y[i] = post(b[i], j0 + i, r0 + i);
                        else
                            for (int64_t i = 0; i < nb; ++i) y[i] = post((b[i] * xs) * ws[i], j0 + i, r0 + i);
                    }
                }
                return;
            }
            {
                const float* W = widen_rows(w, r0, r1);
                if (sgemm) {
                    sgemm(true, int(T), int(r1 - r0), int(cols), X, int(x_stride), W, int(cols), Y + r0, int(rows));
                } else {
                    const at::Tensor wt = at::from_blob(const_cast<float*>(W), {r1 - r0, cols}, at::kFloat);
                    at::Tensor yt = at::from_blob(Y + r0, {T, r1 - r0}, {rows, 1}, at::kFloat);  // a column block
                    at::mm_out(yt, xt, wt.t());
                }
            }
            if constexpr (!std::is_same_v<std::decay_t<Post>, NoEpilogue>) {
                for (int64_t t = 0; t < T; ++t) {
                    float* y = Y + t * rows;
                    for (int64_t i = r0; i < r1; ++i) y[i] = post(y[i], t * rows + i, i);
                }
            }
        });
    }

    // One layer over T rows of one sequence; att_prev / ffn_prev (D) and S (H, N, N) are that sequence's state.
    void prefill_layer(const Layer& L, int64_t T, float* att_prev, float* ffn_prev, float* S) {
        const int64_t D = cfg.n_embd, A = cfg.n_att, F = cfg.ffn_dim, Lm = cfg.mix_lora_rank, Ld = cfg.decay_lora_rank,
                      H = cfg.n_head, N = cfg.head_size;
        // a = LN1(x); d_t = a_{t−1} − a_t (a_{−1} from the state)
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t)
                layer_norm(px.data() + t * D, L.ln1_w.data(), L.ln1_b.data(), D, pa.data() + t * D);
        });
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const float *cur = pa.data() + t * D, *prev = t == 0 ? att_prev : cur - D;
                float* dt = pd.data() + t * D;
                for (int64_t i = 0; i < D; ++i) dt[i] = prev[i] - cur[i];
            }
        });
        std::copy_n(pa.data() + (T - 1) * D, D, att_prev);
        const float* dec = L.decay.data();  // v5: static per channel
        int64_t dec_stride = 0;
        if (cfg.version == 6) {
            for_rows(T, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t)
                    for (int64_t i = 0, j = t * D; i < D; ++i, ++j) pm0[j] = pa[j] + pd[j] * L.m_x[i];
            });
            gemm(L.maa_w1t, pm0.data(), T, D, ph5.data(),
                 [](float y, int64_t, int64_t) { return cpu::tanh_approx(y); });
            for (int c = 0; c < 5; ++c) gemm(L.maa_w2t[c], ph5.data() + c * Lm, T, 5 * Lm, pdel.data() + c * T * D);
            for_rows(T, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t)
                    for (int64_t i = 0, j = t * D; i < D; ++i, ++j) {
                        const float aj = pa[j], dj = pd[j];
                        pxw[j] = aj + dj * (L.m_w[i] + pdel[0 * T * D + j]);
                        pxk[j] = aj + dj * (L.m_k[i] + pdel[1 * T * D + j]);
                        pxv[j] = aj + dj * (L.m_v[i] + pdel[2 * T * D + j]);
                        pxr[j] = aj + dj * (L.m_r[i] + pdel[3 * T * D + j]);
                        pxg[j] = aj + dj * (L.m_g[i] + pdel[4 * T * D + j]);
                    }
            });
            gemm(L.decay_w1t, pxw.data(), T, D, pdh.data(),
                 [](float y, int64_t, int64_t) { return cpu::tanh_approx(y); });
            gemm(L.decay_w2t, pdh.data(), T, Ld, pdec.data(),
                 [&](float y, int64_t, int64_t i) { return exp_approx(-exp_approx(L.decay[i] + y)); });
            dec = pdec.data();
            dec_stride = A;
        } else {
            for_rows(T, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t)
                    for (int64_t i = 0, j = t * D; i < D; ++i, ++j) {
                        pxk[j] = pa[j] + pd[j] * L.m_k[i];
                        pxv[j] = pa[j] + pd[j] * L.m_v[i];
                        pxr[j] = pa[j] + pd[j] * L.m_r[i];
                        pxg[j] = pa[j] + pd[j] * L.m_g[i];
                    }
            });
        }
        gemm(L.att_r, pxr.data(), T, D, pr.data());
        gemm(L.att_k, pxk.data(), T, D, pk.data());
        gemm(L.att_v, pxv.data(), T, D, pv.data());
        gemm(L.att_g, pxg.data(), T, D, pg.data(), [](float y, int64_t, int64_t) { return y * sigmoid(y); });
        // WKV token by token, heads in parallel; then GroupNorm and the gate
        const int n = chunk_count(H, 1);
        pool->run(n, [&](int c) {
            for (int64_t h = H * c / n; h < H * (c + 1) / n; ++h)
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t off = t * A + h * N;
                    float* y = po.data() + off;
                    head_step(N, pr.data() + off, pk.data() + off, pv.data() + off, L.u.data() + h * N,
                              dec + t * dec_stride + h * N, S + h * N * N, y, L.lnx_w.data() + h * N,
                              L.lnx_b.data() + h * N, pg.data() + off);
                }
        });
        gemm(L.att_o, po.data(), T, A, ptmp.data(), [&](float y, int64_t j, int64_t) { return px[j] += y; });
        // channel mix: b = LN2(x); x_k, x_r from b and b_{t−1}
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t)
                layer_norm(px.data() + t * D, L.ln2_w.data(), L.ln2_b.data(), D, pa.data() + t * D);
        });
        for_rows(T, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const float *cur = pa.data() + t * D, *prev = t == 0 ? ffn_prev : cur - D;
                for (int64_t i = 0; i < D; ++i) {
                    const float di = prev[i] - cur[i];
                    pxk[t * D + i] = cur[i] + di * L.ffn_m_k[i];
                    pxr[t * D + i] = cur[i] + di * L.ffn_m_r[i];
                }
            }
        });
        std::copy_n(pa.data() + (T - 1) * D, D, ffn_prev);
        gemm(L.ffn_k, pxk.data(), T, D, pffk.data(), [](float y, int64_t, int64_t) {
            const float p = std::max(y, 0.0f);  // branch-free: a branch on random signs mispredicts half the time
            return p * p;
        });
        gemm(L.ffn_r, pxr.data(), T, D, pffr.data(), [](float y, int64_t, int64_t) { return sigmoid(y); });
        gemm(L.ffn_v, pffk.data(), T, F, ptmp.data(),
             [&](float y, int64_t j, int64_t) { return px[j] += pffr[j] * y; });
    }

    // tokens (B, T) row-major -> logits of each sequence's last token (B, V).
    void prefill(const int64_t* tokens, int64_t B, int64_t T, State& state, float* logits) {
        AVIARY_CHECK(B >= 1 && T >= 1, "CpuEngine::prefill: needs at least one token per sequence, got shape (", B,
                     ", ", T, ")");
        for (int64_t i = 0; i < B * T; ++i)
            AVIARY_CHECK(tokens[i] >= 0 && tokens[i] < cfg.vocab_size, "token id ", tokens[i],
                         " is out of range (vocabulary size ", cfg.vocab_size, ")");
        prepare_state(state, B);
        for (int64_t b = 0; b < B; ++b)
            prefill_sequence(T, b, state, logits + b * cfg.vocab_size, -1, 0,
                             [&](int64_t t, float* row) { embedding_row(tokens[b * T + t], row); });
    }

    // One sequence (batch row b of the state) of T input rows: fill(t, row) writes the embedding row of position t
    // (before ln0); its last position's logits go to `logits` (V). Rows [flip_begin, flip_begin + flip_count) are
    // reversed before every odd layer and restored after it (VisualRWKV's image patches, spec A.4), so such a range
    // is run in one block whatever prefill_chunk is.
    template <class Fill>
    void prefill_sequence(int64_t T, int64_t b, State& state, float* logits, int64_t flip_begin, int64_t flip_count,
                          Fill&& fill) {
        const BlasSingleThreadScope blas_one_thread;  // the pool's threads run the GEMM blocks (gemm())
        const int64_t D = cfg.n_embd, H = cfg.n_head, N = cfg.head_size;
        const bool flip = flip_begin >= 0 && flip_count > 1;
        const int64_t chunk = flip ? std::max<int64_t>(prefill_chunk, T) : std::max<int64_t>(1, prefill_chunk);
        prefill_resize(std::min(T, chunk));
        resize(1);
        auto flip_rows = [&] {
            for (int64_t i = 0; i < flip_count / 2; ++i)
                std::swap_ranges(px.data() + (flip_begin + i) * D, px.data() + (flip_begin + i + 1) * D,
                                 px.data() + (flip_begin + flip_count - 1 - i) * D);
        };
        for (int64_t t0 = 0; t0 < T; t0 += chunk) {
            const int64_t n = std::min(chunk, T - t0);
            for_rows(n, [&](int64_t r0, int64_t r1) {
                std::vector<float> row(static_cast<size_t>(D), 0.0f);
                for (int64_t t = r0; t < r1; ++t) {
                    fill(t0 + t, row.data());
                    layer_norm(row.data(), ln0_w.data(), ln0_b.data(), D, px.data() + t * D);
                }
            });
            for (int l = 0; l < cfg.n_layer; ++l) {
                const bool flip_here = flip && l % 2 == 1;
                if (flip_here) flip_rows();
                prefill_layer(layers[size_t(l)], n, state.att_shift[l].data_ptr<float>() + b * D,
                              state.ffn_shift[l].data_ptr<float>() + b * D,
                              state.wkv[l].data_ptr<float>() + b * H * N * N);
                if (flip_here) flip_rows();
            }
            if (t0 + n == T) {
                layer_norm(px.data() + (n - 1) * D, ln_out_w.data(), ln_out_b.data(), D, a.data());
                run({{&head, a.data(), D, logits, cfg.vocab_size}});
            }
        }
    }

    // GFLOP/s of the prefill GEMM path (gemm() as prefill runs it) on the largest layer matrix, the channel-mix key
    // (F, D), with a full block of prefill_chunk rows; the best of 15 after a warm-up (a busy neighbour only ever
    // slows a repetition down, so the best one is the machine's rate).
    double measure_gemm_gflops() {
        const MatView& w = layers.front().ffn_k;
        const int64_t T = prefill_chunk;
        prefill_resize(T);
        for (int64_t i = 0; i < T * w.cols; ++i) pxk[i] = std::sin(0.37f * float(i % 1013));
        const BlasSingleThreadScope blas_one_thread;
        double best = 1e30;
        for (int rep = 0; rep < 16; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            gemm(w, pxk.data(), T, w.cols, pffk.data());
            const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (rep > 0) best = std::min(best, t);
        }
        return 2.0 * T * w.rows * w.cols / best / 1e9;
    }

    // GB/s of one decode step's weight reads alone: the engine's batch-1 kernels over the model's own matrices, in
    // the order a step reads them (every layer's LoRAs and matrices, then the head), on the engine's threads, with
    // none of the step's other work; best of 8 after a warm-up.
    double measure_weight_read_gbps() {
        resize(1);
        // the jobs of a step (layer()): the same matrices run together
        std::vector<std::vector<const MatView*>> jobs;
        for (const Layer& L : layers) {
            if (cfg.version == 6) {
                jobs.push_back({&L.maa_w1t});
                jobs.push_back({&L.maa_w2t[0], &L.maa_w2t[1], &L.maa_w2t[2], &L.maa_w2t[3], &L.maa_w2t[4]});
                jobs.push_back({&L.decay_w1t});
                jobs.push_back({&L.decay_w2t});
            }
            jobs.push_back({&L.att_r, &L.att_k, &L.att_v, &L.att_g});
            jobs.push_back({&L.att_o});
            jobs.push_back({&L.ffn_k, &L.ffn_r});
            jobs.push_back({&L.ffn_v});
        }
        jobs.push_back({&head});
        int64_t widest = 0, total_rows = 0;
        for (const auto& job : jobs) {
            int64_t rows = 0;
            for (const MatView* w : job) {
                widest = std::max(widest, w->cols);
                rows += w->rows;
            }
            total_rows = std::max(total_rows, rows);
        }
        std::vector<float> x(static_cast<size_t>(widest), 0.5f), y(static_cast<size_t>(total_rows));
        std::vector<Task> tasks;
        double best = 1e30;
        for (int rep = 0; rep < 9; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            for (const auto& job : jobs) {
                tasks.clear();
                int64_t off = 0;
                for (const MatView* w : job) {
                    tasks.push_back({w, x.data(), w->cols, y.data() + off, w->rows});
                    off += w->rows;
                }
                run(tasks);
            }
            const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (rep > 0) best = std::min(best, t);
        }
        return bytes_per_token / best / 1e9;
    }

    // Thread count by measurement (options.threads <= 0): the head product (the largest matrix) timed with 1..max
    // threads, best of three each; the fastest count wins. On a 2-core machine with a busy neighbour 1 thread can
    // beat 2 (a descheduled worker stalls every barrier).
    void choose_threads(int max_threads) {
        if (max_threads <= 1) return;
        resize(1);
        std::vector<float> out(head.rows);
        double best_time = 1e30;
        int best = 1;
        for (int n = 1; n <= max_threads; ++n) {
            pool = std::make_unique<cpu::ThreadPool>(n);
            double t_min = 1e30;
            for (int rep = 0; rep < 4; ++rep) {
                const auto t0 = std::chrono::steady_clock::now();
                run({{&head, a.data(), cfg.n_embd, out.data(), head.rows}});
                const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                if (rep > 0) t_min = std::min(t_min, t);  // rep 0 warms the caches and the threads
            }
            if (t_min < best_time * 0.95) {  // more threads must win clearly
                best_time = t_min;
                best = n;
            }
        }
        if (pool->size() != best) pool = std::make_unique<cpu::ThreadPool>(best);
    }

    void prepare_state(State& state, int64_t B) {
        AVIARY_CHECK(state.n_layer() == cfg.n_layer, "state has ", state.n_layer(), " layers, the model has ",
                     cfg.n_layer);
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

    void step(const int64_t* tokens, int64_t B, State& state, float* logits) {
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
        for (int64_t b = 0; b < B; ++b)
            layer_norm(x.data() + b * D, ln_out_w.data(), ln_out_b.data(), D, a.data() + b * D);
        run({{&head, a.data(), D, logits, cfg.vocab_size}});
    }
};

CpuEngine::CpuEngine(const Model& model, const CpuEngineOptions& options) : impl_(std::make_unique<Impl>()) {
    std::string why;
    AVIARY_CHECK(supports(model, &why), "CpuEngine: ", why);
    Impl& m = *impl_;
    m.cfg = model.config();
    m.dtype = options.dtype == "auto" ? model.options().dtype : options.dtype;
    AVIARY_CHECK(m.dtype == "fp32" || m.dtype == "bf16" || m.dtype == "int8", "CpuEngine: unknown weight dtype '",
                 options.dtype, "' (expected auto, fp32, bf16 or int8)");
    m.kernels = options.kernels == "auto" ? &cpu::kernels_best() : &cpu::kernels_named(options.kernels);
    m.head_step = head_step_for(m.kernels->name);
    m.pool = std::make_unique<cpu::ThreadPool>(options.threads > 0 ? options.threads : 1);
    AVIARY_CHECK(options.prefill_chunk >= 1, "CpuEngine: prefill_chunk must be >= 1, got ", options.prefill_chunk);
    m.prefill_chunk = options.prefill_chunk;
    m.choose_gemm_path(options.prefill_gemm);
    m.load(model);
    if (options.threads <= 0) m.choose_threads(thread_count());
}

CpuEngine::~CpuEngine() = default;

bool CpuEngine::supports(const Model& model, std::string* why) {
    auto no = [&](const char* reason) {
        if (why) *why = reason;
        return false;
    };
    if (model.config().version != 5 && model.config().version != 6)
        return no("the engine runs RWKV-5.2 and RWKV-6 models only");
    if (model.options().device != "cpu") return no("the model is not on the CPU");
    if (model.is_training()) return no("the model is in training mode");
    if (model.has_lora()) return no("the model has LoRA adapters (merge them first)");
    return true;
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

at::Tensor CpuEngine::prefill_embeddings(const at::Tensor& x, State& state, int64_t flip_begin, int64_t flip_count) {
    const ModelConfig& c = impl_->cfg;
    AVIARY_CHECK(x.dim() == 3 && x.size(0) == 1 && x.size(1) >= 1 && x.size(2) == c.n_embd,
                 "CpuEngine::prefill_embeddings takes rows of shape (1, T, ", c.n_embd, "), got ", x.sizes());
    const int64_t T = x.size(1);
    AVIARY_CHECK(flip_begin < 0 || flip_count <= 1 || flip_begin + flip_count <= T, "flipped rows [", flip_begin, ", ",
                 flip_begin + flip_count, ") lie outside the ", T, " input rows");
    const at::Tensor rows = x.detach().to(at::kCPU, at::kFloat).contiguous();
    const float* px = rows.data_ptr<float>();
    at::Tensor logits = at::empty({1, c.vocab_size}, at::kFloat);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->prepare_state(state, 1);
    impl_->prefill_sequence(T, 0, state, logits.data_ptr<float>(), flip_begin, flip_count,
                            [&](int64_t t, float* row) { std::copy_n(px + t * c.n_embd, c.n_embd, row); });
    return logits;
}

at::Tensor CpuEngine::prefill(const at::Tensor& tokens, State& state) {
    AVIARY_CHECK(tokens.dim() == 2, "CpuEngine::prefill takes tokens of shape (B, T), got ", tokens.sizes());
    const at::Tensor ids = tokens.to(at::kCPU, at::kLong).contiguous();
    at::Tensor logits = at::empty({ids.size(0), impl_->cfg.vocab_size}, at::kFloat);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->prefill(ids.data_ptr<int64_t>(), ids.size(0), ids.size(1), state, logits.data_ptr<float>());
    return logits;
}

const std::string& CpuEngine::dtype() const {
    return impl_->dtype;
}
const char* CpuEngine::kernel_name() const {
    return impl_->kernels->name;
}
std::string CpuEngine::prefill_gemm_name() const {
    return impl_->gemm_name();
}
int CpuEngine::threads() const {
    return impl_->pool->size();
}
double CpuEngine::weight_bytes_per_token() const {
    return impl_->bytes_per_token;
}
double CpuEngine::prefill_flops_per_token() const {
    return impl_->prefill_flops_per_token;
}
double CpuEngine::measure_weight_read_gbps() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->measure_weight_read_gbps();
}
double CpuEngine::measure_prefill_gemm_gflops() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->measure_gemm_gflops();
}
const ModelConfig& CpuEngine::config() const {
    return impl_->cfg;
}

namespace {
std::mutex g_engine_mutex;
CpuEngineOptions g_engine_options;
struct CachedEngine {
    at::Tensor identity;  // the model's first state_dict tensor: held so its address cannot be reused meanwhile
    const Model* model = nullptr;
    uint64_t versions = 0;  // Σ of the parameters' version counters: in-place updates (training, merge_lora) bump it
    CpuEngineOptions options;
    std::shared_ptr<CpuEngine> engine;
} g_cached;
}  // namespace

std::string prefill_gemm_path(const std::string& dtype, const std::string& option) {
    std::string want = option;
    if (want == "auto") {
        const char* env = std::getenv("AVIARY_PREFILL_GEMM");
        if (env && *env) want = env;
    }
    AVIARY_CHECK(want == "auto" || want == "onednn" || want == "blas" || want == "libtorch",
                 "CpuEngine: unknown prefill GEMM path '", want, "' (expected auto, onednn, blas or libtorch)");
    const cpu::OneDnnInfo& dnn = cpu::onednn_info();
    if (want == "onednn") {
        AVIARY_CHECK(dnn.available, "CpuEngine: prefill GEMM 'onednn' asked for, but this build has no oneDNN");
        AVIARY_CHECK(dtype != "bf16" || dnn.bf16_supported,
                     "CpuEngine: prefill GEMM 'onednn' has no bf16 matmul on ISA ", dnn.isa, " (needs AVX-512)");
        AVIARY_CHECK(dtype != "int8" || dnn.int8_supported,
                     "CpuEngine: prefill GEMM 'onednn' int8 needs VNNI or "
                     "AMX-INT8 (ISA here: ",
                     dnn.isa, ")");
        return dtype == "fp32" ? "blas" : "onednn";
    }
    if (want == "auto")
        return (dtype == "bf16" && dnn.bf16_matmul) || (dtype == "int8" && dnn.int8_matmul) ? "onednn" : "blas";
    return want;
}

void set_default_cpu_engine_options(const CpuEngineOptions& options) {
    std::lock_guard<std::mutex> lock(g_engine_mutex);
    g_engine_options = options;
}

CpuEngineOptions default_cpu_engine_options() {
    std::lock_guard<std::mutex> lock(g_engine_mutex);
    return g_engine_options;
}

std::shared_ptr<CpuEngine> shared_cpu_engine(const Model& model) {
    if (!CpuEngine::supports(model)) return nullptr;
    const TensorList sd = model.state_dict();
    AVIARY_CHECK(!sd.empty(), "internal: empty model");
    std::lock_guard<std::mutex> lock(g_engine_mutex);
    const CpuEngineOptions& o = g_engine_options;
    const at::Tensor& id = sd.front().tensor;
    uint64_t versions = 0;
    for (const auto& nt : sd) versions += nt.tensor._version();
    const bool same = g_cached.engine && g_cached.model == &model && g_cached.identity.is_same(id) &&
                      g_cached.versions == versions && g_cached.options.dtype == o.dtype &&
                      g_cached.options.threads == o.threads && g_cached.options.kernels == o.kernels &&
                      g_cached.options.prefill_chunk == o.prefill_chunk &&
                      g_cached.options.prefill_gemm == o.prefill_gemm;
    if (!same) {
        g_cached = CachedEngine{};  // frees the previous engine first (an int8 0.4B engine is ~0.5 GB)
        g_cached.engine = std::make_shared<CpuEngine>(model, o);
        g_cached.identity = id;
        g_cached.model = &model;
        g_cached.versions = versions;
        g_cached.options = o;
    }
    return g_cached.engine;
}

}  // namespace aviary
