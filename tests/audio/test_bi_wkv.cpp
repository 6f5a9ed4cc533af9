// Bidirectional WKV (audio/src/bi_wkv.cpp): the autograd path (core WKV forward + time-reversed) and the loop
// reference against float64 numpy scans from tools/make_audio_fixtures.py (tolerance 1e-5 relative to max|y|), and
// a gradient check of the autograd path against finite differences of the reference.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aviary/audio/bi_wkv.h"
#include "aviary/core/checkpoint.h"
#include "common/compare.h"

namespace aviary::audio {
namespace {

struct Fx {
    at::Tensor r, k, v, w, u, y;
};
Fx load() {
    TensorList t = read_safetensors(test::fixture("audio/bi_wkv.safetensors"));
    auto g = [&](const char* n) { return *find_tensor(t, n); };
    return {g("r"), g("k"), g("v"), g("log_w"), g("u"), g("y")};
}

TEST(BiWkv, AutogradPathMatchesFloat64Numpy) {
    Fx f = load();
    EXPECT_TRUE(test::rel_close(bi_wkv(f.r, f.k, f.v, f.w, f.u), f.y, 1e-5));
}

TEST(BiWkv, ReferenceMatchesFloat64Numpy) {
    Fx f = load();
    EXPECT_TRUE(test::rel_close(bi_wkv_reference(f.r, f.k, f.v, f.w, f.u), f.y, 1e-6));
}

TEST(BiWkv, GradientMatchesFiniteDifferences) {
    Fx f = load();
    at::Tensor k = f.k.clone().requires_grad_(true);
    at::Tensor weight = at::randn(f.y.sizes(), at::TensorOptions().dtype(at::kFloat));
    (bi_wkv(f.r, k, f.v, f.w, f.u) * weight).sum().backward();
    // d/dk at a few positions, central differences on the float64 reference
    const double eps = 1e-3;
    for (int64_t flat : {0, 37, 101, 250}) {
        at::Tensor kp = f.k.clone(), km = f.k.clone();
        kp.view(-1)[flat] += eps;
        km.view(-1)[flat] -= eps;
        const double lp =
            (bi_wkv_reference(f.r, kp, f.v, f.w, f.u).to(at::kDouble) * weight.to(at::kDouble)).sum().item<double>();
        const double lm =
            (bi_wkv_reference(f.r, km, f.v, f.w, f.u).to(at::kDouble) * weight.to(at::kDouble)).sum().item<double>();
        const double numeric = (lp - lm) / (2 * eps), analytic = k.grad().view(-1)[flat].item<double>();
        EXPECT_NEAR(analytic, numeric, 2e-3 * std::max(1.0, std::abs(numeric))) << "flat index " << flat;
    }
}

}  // namespace
}  // namespace aviary::audio
