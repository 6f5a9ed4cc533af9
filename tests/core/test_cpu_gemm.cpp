// The CPU engine's prefill GEMMs through oneDNN (core/src/gemm_onednn.cpp, cpu_gemm.h) against float64 references,
// for odd shapes and strides (row tails, blocks narrower than a vector, ldx > K, ldy > N), with the output poisoned
// with NaN first (every element of the block must be written, nothing outside it). The ISA oneDNN runs is printed;
// ctest runs this suite once per ONEDNN_MAX_CPU_ISA cap (tests/CMakeLists.txt), so every ISA of the machine runs it.
// Then the engine's prefill on the oneDNN path against Model::forward on the rounded weights.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_int8.h"
#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_gemm.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/model_shapes.h"
#include "aviary/core/threads.h"
#include "aviary/core/vec_math.h"
#include "common/compare.h"

namespace {

using aviary::cpu::bf16_to_fp32;
using aviary::cpu::fp32_to_bf16;

struct Shape {
    int64_t M, N, K, ldx, ldy;
};
const Shape kShapes[] = {{1, 1, 1, 1, 1},          {1, 17, 9, 9, 20},      {7, 33, 65, 70, 33},
                         {37, 129, 200, 200, 140}, {64, 48, 768, 768, 48}, {256, 96, 1024, 1030, 100}};

const aviary::cpu::OneDnnInfo& info_printed() {
    const auto& i = aviary::cpu::onednn_info();
    static bool once = [&] {
        std::printf("[ info ] oneDNN %s, ISA %s (bf16 units: %s, int8 units: %s)\n", i.version.c_str(), i.isa.c_str(),
                    i.bf16_matmul ? "yes" : "no", i.int8_matmul ? "yes" : "no");
        return true;
    }();
    (void)once;
    return i;
}

std::vector<float> normal(int64_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = d(rng);
    return v;
}

// Visits every output of a poisoned (NaN) Y (M, ldy): columns past N must still be NaN (nothing written outside the
// block), the others finite and passed to check(m, n, y).
template <class Check>
void for_each_output(const Shape& s, const std::vector<float>& y, Check&& check) {
    for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.ldy; ++n) {
            const float got = y[m * s.ldy + n];
            if (n >= s.N) {
                ASSERT_TRUE(std::isnan(got)) << "wrote outside the block at (" << m << ", " << n << ")";
                continue;
            }
            ASSERT_TRUE(std::isfinite(got)) << "(" << m << ", " << n << ") not written";
            check(m, n, got);
        }
}

// bf16 × bf16 → fp32 against the float64 product of the same bf16 values: only the fp32 accumulation differs, bound
// 1e-5·Σ|x·w| per element (measured ≤ 2e-7 on AMX, avx512_core_bf16); and against the float64 product of the
// unrounded fp32 values: each operand's rounding is ≤ 2⁻⁹ relative, so |err| ≤ (2·2⁻⁹ + 2⁻¹⁸)·Σ|x·w| + the above.
TEST(CpuGemm, Bf16MatchesFloat64) {
    const auto& info = info_printed();
    if (!info.available) GTEST_SKIP() << "built without oneDNN";
    if (!info.bf16_supported) {
        std::vector<uint16_t> one(1, 0);
        float y = 0;
        EXPECT_THROW(aviary::cpu::gemm_bf16_onednn(one.data(), 1, 1, 1, one.data(), 1, &y, 1), aviary::Error);
        GTEST_SKIP() << "no bf16 matmul on ISA " << info.isa << " (an error, checked)";
    }
    for (const Shape& s : kShapes) {
        const std::vector<float> xf = normal(s.M * s.ldx, 1), wf = normal(s.N * s.K, 2, 1.0f / std::sqrt(float(s.K)));
        std::vector<uint16_t> x(xf.size()), w(wf.size());
        for (size_t i = 0; i < xf.size(); ++i) x[i] = fp32_to_bf16(xf[i]);
        for (size_t i = 0; i < wf.size(); ++i) w[i] = fp32_to_bf16(wf[i]);
        std::vector<float> y(size_t(s.M * s.ldy), std::numeric_limits<float>::quiet_NaN());
        aviary::cpu::gemm_bf16_onednn(x.data(), s.M, s.K, s.ldx, w.data(), s.N, y.data(), s.ldy);
        double worst = 0;
        for_each_output(s, y, [&](int64_t m, int64_t n, float got) {
            double ref = 0, ref_unrounded = 0, mag = 0;
            for (int64_t k = 0; k < s.K; ++k) {
                const double a = bf16_to_fp32(x[m * s.ldx + k]), b = bf16_to_fp32(w[n * s.K + k]);
                ref += a * b;
                ref_unrounded += double(xf[m * s.ldx + k]) * wf[n * s.K + k];
                mag += std::fabs(a * b);
            }
            ASSERT_LE(std::fabs(got - ref), 1e-5 * mag + 1e-30) << "M" << s.M << " N" << s.N << " K" << s.K;
            ASSERT_LE(std::fabs(got - ref_unrounded), (2.0 / 512 + 1.0 / 262144 + 1e-5) * mag + 1e-30);
            worst = std::max(worst, std::fabs(got - ref) / (mag > 0 ? mag : 1));
        });
        std::printf("[ info ] bf16 M%lld N%lld K%lld: max |err|/Σ|xw| %.2g vs float64 of the bf16 values\n",
                    (long long)s.M, (long long)s.N, (long long)s.K, worst);
    }
}

// int8 codes × int8 weights: the integer sums exactly; with both scales applied, against the float64 product of the
// unquantised values, the error is bounded by the two roundings (|x − sx·qx| ≤ sx/2, |w − sw·qw| ≤ sw/2) plus the
// two fp32 multiplications (bound 1e-6·Σ|codes|·scales).
TEST(CpuGemm, Int8MatchesFloat64) {
    const auto& info = info_printed();
    if (!info.available) GTEST_SKIP() << "built without oneDNN";
    if (!info.int8_supported) {
        std::vector<int8_t> one(1, 1);
        float y = 0;
        EXPECT_THROW(aviary::cpu::gemm_int8_onednn(one.data(), 1, 1, 1, one.data(), 1, &y, 1), aviary::Error);
        GTEST_SKIP() << "no exact int8 matmul on ISA " << info.isa << " (an error, checked)";
    }
    for (const Shape& s : kShapes) {
        const std::vector<float> xf = normal(s.M * s.ldx, 3), wf = normal(s.N * s.K, 4, 1.0f / std::sqrt(float(s.K)));
        std::vector<int8_t> xq(size_t(s.M * s.ldx), 0), wq(size_t(s.N * s.K));
        std::vector<float> xs(size_t(s.M)), ws(size_t(s.N));
        for (int64_t m = 0; m < s.M; ++m)
            aviary::cpu::quantize_rows_int8(xf.data() + m * s.ldx, 1, s.K, xq.data() + m * s.ldx, &xs[size_t(m)]);
        aviary::cpu::quantize_rows_int8(wf.data(), s.N, s.K, wq.data(), ws.data());
        std::vector<float> y(size_t(s.M * s.ldy), std::numeric_limits<float>::quiet_NaN());
        aviary::cpu::gemm_int8_onednn(xq.data(), s.M, s.K, s.ldx, wq.data(), s.N, y.data(), s.ldy);
        for_each_output(s, y, [&](int64_t m, int64_t n, float got) {
            int64_t sum = 0, mag = 0;
            double ref_unq = 0, bound = 0;
            for (int64_t k = 0; k < s.K; ++k) {
                const int a = xq[m * s.ldx + k], b = wq[n * s.K + k];
                sum += a * b;
                mag += std::abs(a * b);
                const double xv = xf[m * s.ldx + k], wv = wf[n * s.K + k];
                ref_unq += xv * wv;
                bound += std::fabs(xv) * ws[n] / 2 + std::fabs(wv) * xs[m] / 2 + xs[m] * ws[n] / 4;
            }
            ASSERT_EQ(double(got), double(sum))  // exact: |sum| < 2^24 for these K
                << "M" << s.M << " N" << s.N << " K" << s.K << " at (" << m << ", " << n << ")";
            // with both scales as the engine applies them, against the unquantised float64 product
            const double scaled = double((got * xs[m]) * ws[n]);
            ASSERT_LE(std::fabs(scaled - ref_unq), bound + 1e-6 * double(mag) * ws[n] * xs[m]);
        });
    }
}

// fp32 × fp32 (the engine's LoRA products on the oneDNN path): fp32 arithmetic, bound 1e-5·Σ|x·w| against float64
// (fp32 accumulation over K ≤ 1024 terms).
TEST(CpuGemm, F32MatchesFloat64) {
    const auto& info = info_printed();
    if (!info.available) GTEST_SKIP() << "built without oneDNN";
    for (const Shape& s : kShapes) {
        const std::vector<float> x = normal(s.M * s.ldx, 5), w = normal(s.N * s.K, 6, 1.0f / std::sqrt(float(s.K)));
        std::vector<float> y(size_t(s.M * s.ldy), std::numeric_limits<float>::quiet_NaN());
        aviary::cpu::gemm_f32_onednn(x.data(), s.M, s.K, s.ldx, w.data(), s.N, y.data(), s.ldy);
        for_each_output(s, y, [&](int64_t m, int64_t n, float got) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < s.K; ++k) {
                ref += double(x[m * s.ldx + k]) * w[n * s.K + k];
                mag += std::fabs(double(x[m * s.ldx + k]) * w[n * s.K + k]);
            }
            ASSERT_LE(std::fabs(got - ref), 1e-5 * mag + 1e-30) << "M" << s.M << " N" << s.N << " K" << s.K;
        });
    }
}

TEST(CpuGemm, Bf16RoundingMatchesLibTorch) {
    const std::vector<float> v = {0.0f,
                                  -0.0f,
                                  1.0f,
                                  1.00390625f,
                                  1.01171875f,
                                  3.14159f,
                                  -2.5e-20f,
                                  6.5e4f,
                                  1e38f,
                                  std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN()};
    std::vector<uint16_t> out(v.size());
    aviary::cpu::round_to_bf16(v.data(), int64_t(v.size()), out.data());
    const at::Tensor ref =
        at::from_blob(const_cast<float*>(v.data()), {int64_t(v.size())}, at::kFloat).to(at::kBFloat16);
    for (size_t i = 0; i < v.size(); ++i) {
        const float a = bf16_to_fp32(out[i]), b = ref[int64_t(i)].item<float>();
        if (std::isnan(b))
            EXPECT_TRUE(std::isnan(a));
        else
            EXPECT_EQ(a, b) << v[i];
    }
}

// The engine's prefill on the oneDNN path (bf16 activations × bf16 weights; int8 activation codes per token × int8
// weights) against Model::forward with the same rounded weights in fp32 (the blas path matches that at 1e-5 / 5e-4,
// test_cpu_engine.cpp). The activations' rounding is what remains: bf16 ≤ 2⁻⁹ relative per product input, int8 codes
// ≤ max|x|/254 per token; through 2 layers of a random model, measured max|Δ|/max|logit| 2.6-5.0e-3 (bf16) and
// 1.4-2.0e-2 (int8) on AMX, AVX512-BF16 and VNNI alike; bounds 2e-2 and 6e-2 state it with margin (oneDNN's
// saturating non-VNNI int8 kernels measured 0.1, which is why they are refused).
TEST(CpuEngineOneDnn, PrefillMatchesTheModelOfItsRoundedWeights) {
    const auto& info = info_printed();
    if (!info.available) GTEST_SKIP() << "built without oneDNN";
    for (int version : {5, 6}) {
        aviary::ModelConfig c = aviary::init_config(2, 128, version, 300);
        const aviary::TensorList w = aviary::random_weights(c, 9);
        aviary::Model model = aviary::Model::from_tensors(w);
        const aviary::TensorList rounded_int8 = aviary::dequantize_checkpoint_int8(aviary::quantize_checkpoint_int8(w));
        aviary::TensorList rounded_bf16;
        for (const auto& nt : w)
            rounded_bf16.push_back(
                {nt.name, aviary::is_matrix_weight(nt.name) ? nt.tensor.to(at::kBFloat16).to(at::kFloat) : nt.tensor});
        const at::Tensor prompt = at::randint(0, 300, {2, 37}, at::detail::createCPUGenerator(4), at::kLong);
        for (const std::string dtype : {"bf16", "int8"}) {
            if (!(dtype == "bf16" ? info.bf16_supported : info.int8_supported)) {
                aviary::CpuEngineOptions eo;
                eo.dtype = dtype;
                eo.prefill_gemm = "onednn";
                EXPECT_THROW(aviary::CpuEngine(model, eo), aviary::Error) << dtype << " on " << info.isa;
                continue;
            }
            aviary::Model reference = aviary::Model::from_tensors(dtype == "bf16" ? rounded_bf16 : rounded_int8);
            aviary::CpuEngineOptions eo;
            eo.dtype = dtype;
            eo.prefill_chunk = 16;
            eo.prefill_gemm = "onednn";
            eo.threads = 2;
            aviary::CpuEngine engine(model, eo);
            EXPECT_EQ(engine.prefill_gemm_name(), "onednn-" + dtype);
            aviary::State ref = reference.new_state(2), got = model.new_state(2);
            const at::Tensor want = reference.forward(prompt, ref, false), have = engine.prefill(prompt, got);
            const double tol = dtype == "int8" ? 6e-2 : 2e-2;
            const double err = (have - want).abs().max().item<double>() / want.abs().max().item<double>();
            std::printf(
                "[ info ] v%d %s prefill on oneDNN vs Model::forward of the rounded weights: max rel error %.3g\n",
                version, dtype.c_str(), err);
            EXPECT_TRUE(aviary::test::rel_close(have, want, tol)) << "v" << version << " " << dtype;
            for (int l = 0; l < c.n_layer; ++l)
                EXPECT_TRUE(aviary::test::rel_close(got.wkv[l], ref.wkv[l], tol)) << dtype << " wkv layer " << l;
        }
    }
}

// The bf16 path measurement: taken exactly where the choice is open (native bf16 units without AMX, and a BLAS to
// compare with), both rates real, and the choice the one its rates and margin give.
TEST(CpuEngineOneDnn, Bf16RatesMeasuredWhereTheChoiceIsOpen) {
    const auto& info = aviary::cpu::onednn_info();
    const auto& r = aviary::cpu::bf16_gemm_rates();
    const bool open = info.bf16_matmul && !info.bf16_amx && aviary::blas_sgemm_row_major() != nullptr;
    EXPECT_EQ(r.measured, open);
    if (!r.measured) {
        EXPECT_FALSE(r.onednn_faster);
        GTEST_SKIP() << "the bf16 path needs no measurement here (ISA " << info.isa << ")";
    }
    std::printf("[ info ] bf16 block on ISA %s: oneDNN %.1f GFLOP/s, BLAS (widened) %.1f GFLOP/s -> %s\n",
                info.isa.c_str(), r.onednn_gflops, r.blas_gflops, r.onednn_faster ? "onednn" : "blas");
    EXPECT_GT(r.onednn_gflops, 1.0);
    EXPECT_GT(r.blas_gflops, 1.0);
    EXPECT_EQ(r.onednn_faster, r.onednn_gflops >= aviary::cpu::kBf16OneDnnMargin * r.blas_gflops);
    EXPECT_EQ(&r, &aviary::cpu::bf16_gemm_rates());  // measured once per process
}

// The compute floor's rate: the fastest path for the engine's weights, measured whatever path the engine was given,
// and the engine keeps its own path afterwards (the same name, the same results).
TEST(CpuEngineOneDnn, FastestPathIsMeasuredWhateverPathWasForced) {
    aviary::ModelConfig c = aviary::init_config(2, 256, 6, 300);
    aviary::Model model = aviary::Model::from_tensors(aviary::random_weights(c, 5));
    const at::Tensor prompt = at::randint(0, 300, {1, 9}, at::detail::createCPUGenerator(2), at::kLong);
    for (const std::string dtype : {"fp32", "bf16", "int8"}) {
        aviary::CpuEngineOptions eo;
        eo.dtype = dtype;
        eo.threads = 1;
        eo.prefill_gemm = "blas";
        aviary::CpuEngine engine(model, eo);
        aviary::State s0 = model.new_state(1);
        const at::Tensor before = engine.prefill(prompt, s0);
        const double own = engine.measure_prefill_gemm_gflops();
        const auto [name, fastest] = engine.measure_fastest_gemm_gflops();
        std::printf("[ info ] %s engine on blas: %.1f GFLOP/s; fastest here %s, %.1f\n", dtype.c_str(), own,
                    name.c_str(), fastest);
        EXPECT_GT(fastest, 0.0);
        const auto& dnn = aviary::cpu::onednn_info();
        const bool dnn_possible = (dtype == "bf16" && dnn.bf16_supported) || (dtype == "int8" && dnn.int8_supported);
        EXPECT_TRUE(name == "blas" || (dnn_possible && name == "onednn-" + dtype)) << name;
        EXPECT_EQ(engine.prefill_gemm_name(), "blas");
        aviary::State s1 = model.new_state(1);
        EXPECT_TRUE(at::equal(engine.prefill(prompt, s1), before)) << dtype;
    }
}

TEST(CpuEngineOneDnn, PathNamesAndErrors) {
    EXPECT_EQ(aviary::prefill_gemm_path("fp32", "blas"), "blas");
    EXPECT_EQ(aviary::prefill_gemm_path("bf16", "libtorch"), "libtorch");
    EXPECT_THROW(aviary::prefill_gemm_path("bf16", "mkl"), aviary::Error);
    {  // a bad value in the environment is named as coming from there
        const char* before = std::getenv("AVIARY_PREFILL_GEMM");
        const std::string saved = before ? before : "";
        setenv("AVIARY_PREFILL_GEMM", "mkl", 1);
        std::string what;
        try {
            aviary::prefill_gemm_path("bf16");
        } catch (const aviary::Error& e) {
            what = e.what();
        }
        if (before)
            setenv("AVIARY_PREFILL_GEMM", saved.c_str(), 1);
        else
            unsetenv("AVIARY_PREFILL_GEMM");
        EXPECT_NE(what.find("'mkl' from $AVIARY_PREFILL_GEMM"), std::string::npos) << what;
    }
    const auto& info = aviary::cpu::onednn_info();
    // auto follows the ISA oneDNN reports, never the CPU model
    if (!std::getenv("AVIARY_PREFILL_GEMM")) {
        const auto& rates = aviary::cpu::bf16_gemm_rates();
        EXPECT_EQ(aviary::prefill_gemm_path("bf16"), info.bf16_amx || rates.onednn_faster ? "onednn" : "blas");
        EXPECT_EQ(aviary::prefill_gemm_path("int8"), info.int8_matmul ? "onednn" : "blas");
        EXPECT_EQ(aviary::prefill_gemm_path("fp32"), "blas");
    }
}

}  // namespace

// vec_math.h's exp_approx (the engine's epilogues) against double-precision exp: at most 2 ulp over the range it
// computes, 0 below it, NaN kept; σ follows.
TEST(VecMath, ExpWithinTwoUlp) {
    double worst_ulp = 0;
    for (double x = -87.0; x <= 88.0; x += 1.0 / 4096 + 1e-7) {
        const float xf = float(x);
        const double ref = std::exp(double(xf));
        const float got = aviary::cpu::exp_approx(xf);
        const float ref_f = float(ref);
        const double ulp = double(std::nextafter(ref_f, INFINITY)) - double(ref_f);
        worst_ulp = std::max(worst_ulp, std::fabs(double(got) - ref) / ulp);
    }
    std::printf("[ info ] exp_approx: max error %.2f ulp on [-87, 88]\n", worst_ulp);
    EXPECT_LE(worst_ulp, 2.0);
    EXPECT_EQ(aviary::cpu::exp_approx(-100.0f), 0.0f);
    EXPECT_EQ(aviary::cpu::exp_approx(-INFINITY), 0.0f);
    EXPECT_TRUE(std::isfinite(aviary::cpu::exp_approx(1000.0f)));
    EXPECT_TRUE(std::isnan(aviary::cpu::exp_approx(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_EQ(aviary::cpu::exp_approx(0.0f), 1.0f);
    EXPECT_NEAR(aviary::cpu::sigmoid_approx(0.0f), 0.5f, 0.0f);
    EXPECT_NEAR(aviary::cpu::sigmoid_approx(3.0f), 1.0 / (1.0 + std::exp(-3.0)), 2e-7);
    EXPECT_LT(aviary::cpu::sigmoid_approx(-200.0f), 1e-37f);  // 1/(1 + e^88.3): the clamp, ~0 absolute
    EXPECT_EQ(aviary::cpu::sigmoid_approx(200.0f), 1.0f);
    // tanh_approx: relative error against double tanh (the LoRA epilogues)
    double worst_tanh = 0;
    for (double x = -10.0; x <= 10.0; x += 1.0 / 8192 + 1e-8) {
        const float xf = float(x);
        const double ref = std::tanh(double(xf));
        if (ref == 0) continue;
        worst_tanh = std::max(worst_tanh, std::fabs(double(aviary::cpu::tanh_approx(xf)) - ref) / std::fabs(ref));
    }
    std::printf("[ info ] tanh_approx: max relative error %.2g on [-10, 10]\n", worst_tanh);
    EXPECT_LE(worst_tanh, 5e-7);
    EXPECT_EQ(aviary::cpu::tanh_approx(0.0f), 0.0f);
    EXPECT_EQ(aviary::cpu::tanh_approx(50.0f), 1.0f);
    EXPECT_EQ(aviary::cpu::tanh_approx(-50.0f), -1.0f);
    EXPECT_TRUE(std::isnan(aviary::cpu::tanh_approx(std::numeric_limits<float>::quiet_NaN())));
}
