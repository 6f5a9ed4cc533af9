// Official from-scratch initialisation (model_init.h). Formulas: spec §7.2 (LM
// model.py @86affd7, RWKV_Tmix_x052/x060 and RWKV_CMix_x052/x060 __init__) and
// §7.3 (`generate_init_weight`, scheme of 43045b7). Per-layer ratios: r01 =
// l/(L−1), r10 = 1 − l/L, ddd_i = i/D. Computed in double, stored fp32.
#include "aviary/core/model_init.h"

#include <ATen/ATen.h>

#include <cmath>

#include "aviary/core/error.h"

namespace aviary {
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Orthogonal (rows, cols) matrix times `gain`: QR of a Gaussian matrix with the
// sign of diag(R) folded into Q (the construction of
// torch.nn.init.orthogonal_), drawn from `gen` so that the seed fixes it.
at::Tensor orthogonal(int64_t rows, int64_t cols, double gain, at::Generator& gen) {
    if (gain == 0.0) return at::zeros({rows, cols}, at::kFloat);
    const bool wide = rows < cols;
    at::Tensor a = at::normal(0.0, 1.0, {wide ? cols : rows, wide ? rows : cols}, gen, at::kDouble);  // tall
    auto [q, r] = at::linalg_qr(a);
    q = q * at::sign(r.diagonal()).unsqueeze(0);
    if (wide) q = q.t();
    return (q * gain).to(at::kFloat).contiguous();
}

// Vector of f(i) for i = 0..n−1 as fp32.
template <class Fn>
at::Tensor make_vector(int64_t n, Fn f) {
    at::Tensor t = at::empty({n}, at::kDouble);
    auto acc = t.accessor<double, 1>();
    for (int64_t i = 0; i < n; ++i) acc[i] = f(i);
    return t.to(at::kFloat);
}

}  // namespace

ModelConfig init_config(int n_layer, int n_embd, int version, int vocab_size) {
    AVIARY_CHECK(version == 4 || version == 5 || version == 6, "unknown model version ", version,
                 " (expected 4, 5 or 6)");
    AVIARY_CHECK(n_layer >= 2,
                 "n_layer must be at least 2 for the official init (it divides "
                 "by L−1), got ",
                 n_layer);
    AVIARY_CHECK(n_embd >= 64 && n_embd % 64 == 0, "n_embd must be a positive multiple of the head size 64, got ",
                 n_embd);
    AVIARY_CHECK(vocab_size >= 2, "vocabulary size must be at least 2, got ", vocab_size);
    ModelConfig c;
    c.version = version;
    c.n_layer = n_layer;
    c.n_embd = c.n_att = n_embd;
    c.head_size = version == 4 ? n_embd : 64;  // RWKV-4: per-channel state, one "head"
    c.n_head = n_embd / c.head_size;
    c.vocab_size = vocab_size;
    c.ffn_dim = static_cast<int>((int64_t(n_embd) * 7 / 2) / 32 * 32);  // int((D·3.5)//32·32), spec §7.1
    if (version == 6) c.mix_lora_rank = 32, c.decay_lora_rank = 64;     // D_MIX_LORA, D_DECAY_LORA
    for (const auto& [name, shape] : expected_shapes(c)) {
        int64_t n = 1;
        for (auto s : shape) n *= s;
        c.n_params += n;
    }
    return c;
}

TensorList init_weights(const ModelConfig& c, uint64_t seed) {
    AVIARY_CHECK(c.n_layer >= 2, "the official init needs n_layer >= 2 (it divides by L−1), got ", c.n_layer);
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t D = c.n_embd, A = c.n_att, V = c.vocab_size, L = c.n_layer;
    TensorList out;
    for (const auto& [name, shape] : expected_shapes(c)) {
        at::Tensor t;
        int layer = -1;
        if (name.rfind("blocks.", 0) == 0) layer = std::stoi(name.substr(7));
        const double r01 = layer >= 0 ? double(layer) / double(L - 1) : 0.0;    // ratio_0_to_1
        const double r10 = layer >= 0 ? 1.0 - double(layer) / double(L) : 0.0;  // ratio_1_to_almost0
        auto ddd_pow = [&](double e) { return make_vector(D, [&](int64_t i) { return std::pow(double(i) / D, e); }); };
        const std::string leaf = name.substr(name.rfind('.') + 1);
        const bool att = name.find(".att.") != std::string::npos;

        if (name == "emb.weight") {
            t = at::empty(shape, at::kFloat).uniform_(-1e-4, 1e-4, gen);  // emb U(−1e−4, 1e−4)
        } else if (name == "head.weight") {
            // orthogonal, gain 0.5·√(V/D) if V > D else 0.5
            const double gain = V > D ? 0.5 * std::sqrt(double(V) / double(D)) : 0.5;
            t = orthogonal(V, D, gain, gen);
        } else if (ends_with(name, "att.ln_x.weight")) {
            // ln_x.weight = ((1+l)/L)^0.7
            t = at::full(shape, std::pow((1.0 + layer) / double(L), 0.7), at::kFloat);
        } else if (ends_with(name, ".weight") && shape.size() == 1) {
            t = at::ones(shape, at::kFloat);  // LayerNorm / GroupNorm weight
        } else if (ends_with(name, ".bias")) {
            t = at::zeros(shape, at::kFloat);
        } else if (att && (leaf == "time_mix_k")) {
            t = ddd_pow(r10);  // ddd^r10
        } else if (att && leaf == "time_mix_v") {
            t = ddd_pow(r10) + 0.3 * r01;  // ddd^r10 + 0.3·r01
        } else if (att && (leaf == "time_mix_r" || leaf == "time_mix_g")) {
            t = ddd_pow(0.5 * r10);  // ddd^(0.5·r10)
        } else if (att && (leaf == "time_maa_x" || leaf == "time_maa_w" || leaf == "time_maa_k")) {
            t = 1.0 - ddd_pow(r10);  // 1 − ddd^r10
        } else if (att && leaf == "time_maa_v") {
            t = 1.0 - (ddd_pow(r10) + 0.3 * r01);  // 1 − (ddd^r10 + 0.3·r01)
        } else if (att && (leaf == "time_maa_r" || leaf == "time_maa_g")) {
            t = 1.0 - ddd_pow(0.5 * r10);  // 1 − ddd^(0.5·r10)
        } else if (leaf == "time_maa_w1" || leaf == "time_decay_w1") {
            t = at::zeros(shape, at::kFloat);
        } else if (leaf == "time_maa_w2" || leaf == "time_decay_w2") {
            t = at::empty(shape, at::kFloat).uniform_(-0.01, 0.01, gen);  // U(−0.01, 0.01)
        } else if (c.version == 4 && leaf == "time_decay") {
            // RWKV-4 (v4neo RWKV_TimeMix): decay_speed[n] = −5 + 8·(n/(A−1))^(0.7 + 1.3·r01)
            t = make_vector(A, [&](int64_t n) { return -5.0 + 8.0 * std::pow(double(n) / (A - 1), 0.7 + 1.3 * r01); });
        } else if (leaf == "time_first") {
            // RWKV-4: u[n] = ln 0.3 + 0.5·(((n+1) mod 3) − 1)
            t = make_vector(A, [&](int64_t n) { return std::log(0.3) + 0.5 * double((n + 1) % 3 - 1); });
        } else if (leaf == "time_decay") {
            // decay_speed[n] = −6 + 5·(n/(A−1))^(0.7 + 1.3·r01)
            t = make_vector(A, [&](int64_t n) { return -6.0 + 5.0 * std::pow(double(n) / (A - 1), 0.7 + 1.3 * r01); });
        } else if (leaf == "time_faaaa") {
            // u[n] = r01·(1 − n/(A−1)) + 0.1·(((n+1) mod 3) − 1)
            t = make_vector(
                A, [&](int64_t n) { return r01 * (1.0 - double(n) / (A - 1)) + 0.1 * double((n + 1) % 3 - 1); });
        } else if (leaf == "time_state") {
            t = at::zeros(shape, at::kFloat);
        } else if (!att && (leaf == "time_mix_k" || leaf == "time_mix_r")) {
            t = ddd_pow(r10);  // CMix x052: ddd^r10
        } else if (!att && (leaf == "time_maa_k" || leaf == "time_maa_r")) {
            t = 1.0 - ddd_pow(r10);  // CMix x060 @86affd7: 1 − ddd^r10
        } else if (shape.size() == 2) {
            // generate_init_weight: orthogonal with gain `scale` on the (out, in)
            // matrix
            double scale = 1.0;
            if (ends_with(name, "att.key.weight") || ends_with(name, "att.gate.weight")) scale = 0.1;
            if (ends_with(name, "att.output.weight") || ends_with(name, "ffn.value.weight") ||
                ends_with(name, "ffn.receptance.weight"))
                scale = 0.0;
            // RWKV-4 (v4neo generate_init_weight) also zeroes att.key and att.receptance.
            if (c.version == 4 && (ends_with(name, "att.key.weight") || ends_with(name, "att.receptance.weight")))
                scale = 0.0;
            t = orthogonal(shape[0], shape[1], scale, gen);
        } else {
            AVIARY_FAIL("internal: no init rule for '", name, "'");
        }
        out.push_back({name, t.reshape(shape).contiguous()});
    }
    return out;
}

}  // namespace aviary
