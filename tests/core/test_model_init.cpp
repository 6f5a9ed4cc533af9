// Official from-scratch init (core/src/model_init.cpp) against closed forms of
// spec §7.2–7.3 computed here independently: per-layer mixes/decays/bonus at l
// = 0 and l = L−1, ln_x weights, orthogonality WᵀW = gain²·I.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "common/compare.h"

using namespace aviary;

namespace {

at::Tensor get(const TensorList& w, const std::string& name) {
    const at::Tensor* t = find_tensor(w, name);
    EXPECT_NE(t, nullptr) << name;
    return t ? t->to(at::kDouble).flatten() : at::Tensor();
}

// WᵀW (or WWᵀ for wide matrices) must be gain²·I.
void expect_orthogonal(const at::Tensor& w, double gain, const std::string& what) {
    at::Tensor m = w.to(at::kDouble);
    at::Tensor g = m.size(0) >= m.size(1) ? m.t().mm(m) : m.mm(m.t());
    at::Tensor eye = at::eye(g.size(0), at::kDouble) * (gain * gain);
    const double err = (g - eye).abs().max().item<double>();
    EXPECT_LT(err, 1e-5 * std::max(1.0, gain * gain)) << what << " gain " << gain;
}

}  // namespace

TEST(ModelInit, ConfigFollowsOfficialDimensions) {
    ModelConfig c = init_config(2, 768, 6, 65536);
    EXPECT_EQ(c.ffn_dim, 2688);  // spec §7.1 example
    EXPECT_EQ(c.n_head, 12);
    EXPECT_EQ(c.head_size, 64);
    EXPECT_EQ(c.mix_lora_rank, 32);
    EXPECT_EQ(c.decay_lora_rank, 64);
    EXPECT_EQ(init_config(2, 1024, 5, 65536).ffn_dim, 3584);
    EXPECT_THROW(init_config(1, 64, 6, 256), Error);  // divides by L−1
    EXPECT_THROW(init_config(2, 96, 6, 256), Error);  // not a multiple of 64
}

TEST(ModelInit, V5LayerFormulasAtFirstAndLastLayer) {
    const int L = 3, D = 128, V = 512;
    TensorList w = init_weights(init_config(L, D, 5, V), 1);
    for (int l : {0, L - 1}) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        const double r01 = double(l) / (L - 1), r10 = 1.0 - double(l) / L;
        at::Tensor mk = get(w, p + "att.time_mix_k"), mv = get(w, p + "att.time_mix_v"),
                   mr = get(w, p + "att.time_mix_r");
        at::Tensor fk = get(w, p + "ffn.time_mix_k");
        for (int i : {0, 1, 37, D - 1}) {
            const double x = double(i) / D;
            EXPECT_NEAR(mk[i].item<double>(), std::pow(x, r10), 1e-6) << l << " " << i;
            EXPECT_NEAR(mv[i].item<double>(), std::pow(x, r10) + 0.3 * r01, 1e-6);
            EXPECT_NEAR(mr[i].item<double>(), std::pow(x, 0.5 * r10), 1e-6);
            EXPECT_NEAR(fk[i].item<double>(), std::pow(x, r10), 1e-6);
        }
        at::Tensor dec = get(w, p + "att.time_decay"), u = get(w, p + "att.time_faaaa");
        EXPECT_EQ(find_tensor(w, p + "att.time_decay")->sizes(), (at::IntArrayRef{2, 64}));
        for (int n : {0, 1, 2, 64, D - 1}) {
            const double q = double(n) / (D - 1);
            // l = 0: −6 + 5·q^0.7 and zigzag only; l = L−1: −6 + 5·q² and (1 − q) +
            // zigzag
            const double want_decay = l == 0 ? -6 + 5 * std::pow(q, 0.7) : -6 + 5 * q * q;
            const double zig = 0.1 * double((n + 1) % 3 - 1);
            const double want_u = l == 0 ? zig : (1 - q) + zig;
            EXPECT_NEAR(dec[n].item<double>(), want_decay, 1e-5) << l << " " << n;
            EXPECT_NEAR(u[n].item<double>(), want_u, 1e-6) << l << " " << n;
        }
        EXPECT_NEAR(get(w, p + "att.ln_x.weight")[5].item<double>(), std::pow((1.0 + l) / L, 0.7), 1e-6);
        EXPECT_EQ(get(w, p + "ln1.weight").sum().item<double>(), D);
        EXPECT_EQ(get(w, p + "ln1.bias").abs().sum().item<double>(), 0);
    }
}

TEST(ModelInit, V6LayerFormulasAndLoras) {
    const int L = 2, D = 64, V = 256;
    TensorList w = init_weights(init_config(L, D, 6, V), 2);
    for (int l : {0, 1}) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        const double r01 = double(l) / (L - 1), r10 = 1.0 - double(l) / L;
        for (int i : {0, 3, D - 1}) {
            const double x = double(i) / D;
            for (const char* m : {"x", "w", "k"})
                EXPECT_NEAR(get(w, p + "att.time_maa_" + m)[i].item<double>(), 1 - std::pow(x, r10), 1e-6) << m;
            EXPECT_NEAR(get(w, p + "att.time_maa_v")[i].item<double>(), 1 - (std::pow(x, r10) + 0.3 * r01), 1e-6);
            EXPECT_NEAR(get(w, p + "att.time_maa_g")[i].item<double>(), 1 - std::pow(x, 0.5 * r10), 1e-6);
            EXPECT_NEAR(get(w, p + "ffn.time_maa_r")[i].item<double>(), 1 - std::pow(x, r10), 1e-6);
        }
        EXPECT_EQ(find_tensor(w, p + "att.time_decay")->sizes(), (at::IntArrayRef{1, 1, D}));
        EXPECT_NEAR(get(w, p + "att.time_decay")[D - 1].item<double>(), -1.0,
                    1e-6);  // −6 + 5·1
        EXPECT_NEAR(get(w, p + "att.time_decay")[0].item<double>(), -6.0, 1e-6);
        EXPECT_EQ(get(w, p + "att.time_maa_w1").abs().max().item<double>(), 0);
        EXPECT_EQ(get(w, p + "att.time_decay_w1").abs().max().item<double>(), 0);
        for (const char* lora : {"att.time_maa_w2", "att.time_decay_w2"}) {
            at::Tensor t = get(w, p + lora);
            EXPECT_LE(t.abs().max().item<double>(), 0.01);
            EXPECT_GT(t.abs().max().item<double>(), 0.005);  // U(±0.01), not zeros
        }
    }
}

TEST(ModelInit, MatricesAreOrthogonalWithOfficialGains) {
    const int D = 128, V = 512;
    TensorList w = init_weights(init_config(2, D, 6, V), 3);
    const std::string p = "blocks.1.";
    expect_orthogonal(*find_tensor(w, p + "att.key.weight"), 0.1, "att.key");
    expect_orthogonal(*find_tensor(w, p + "att.gate.weight"), 0.1, "att.gate");
    expect_orthogonal(*find_tensor(w, p + "att.receptance.weight"), 1.0, "att.receptance");
    expect_orthogonal(*find_tensor(w, p + "att.value.weight"), 1.0, "att.value");
    expect_orthogonal(*find_tensor(w, p + "ffn.key.weight"), 1.0, "ffn.key (F×D, tall)");
    expect_orthogonal(*find_tensor(w, "head.weight"), 0.5 * std::sqrt(double(V) / D), "head (V > D)");
    for (const char* z : {"att.output.weight", "ffn.value.weight", "ffn.receptance.weight"})
        EXPECT_EQ(find_tensor(w, p + z)->abs().max().item<double>(), 0) << z;
    at::Tensor emb = *find_tensor(w, "emb.weight");
    EXPECT_LE(emb.abs().max().item<double>(), 1e-4);
    EXPECT_GT(emb.abs().max().item<double>(), 0.9e-4);
    // head gain 0.5 when V <= D
    TensorList small = init_weights(init_config(2, 128, 5, 64), 3);
    expect_orthogonal(*find_tensor(small, "head.weight"), 0.5, "head (V <= D, wide)");
}

TEST(ModelInit, SeededAndLoadable) {
    ModelConfig c = init_config(2, 64, 6, 256);
    TensorList a = init_weights(c, 7), b = init_weights(c, 7), d = init_weights(c, 8);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].tensor, b[i].tensor)) << a[i].name;
    EXPECT_FALSE(at::equal(*find_tensor(a, "head.weight"), *find_tensor(d, "head.weight")));
    Model m = Model::from_tensors(a);
    EXPECT_EQ(m.config().n_params, c.n_params);
    State s = m.new_state(1);
    at::Tensor logits = m.forward(at::arange(5, at::kLong).unsqueeze(0), s);
    EXPECT_TRUE(logits.isfinite().all().item<bool>());
}
