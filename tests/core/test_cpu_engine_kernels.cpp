// Tests of the CPU decode engine's matrix-vector kernels (core/src/matvec_*.cpp) and int8 quantisation
// (core/src/quantize_int8.cpp) and worker pool (core/src/cpu_engine_pool.cpp): every kernel set this CPU runs (scalar
// reference, AVX2, AVX-512) against a float64 dot product computed here, for fp32, bf16 and int8 weights, odd shapes
// (tails, batches not a multiple of 8) and row sub-ranges (outputs outside the range must stay untouched); bf16
// rounding against c10::BFloat16.
#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_engine_pool.h"
#include "aviary/core/error.h"

using namespace aviary::cpu;

#ifdef AVIARY_TEST_VEC64_TWIN
namespace aviary::cpu {
const KernelSet* vec64_twin_kernels();  // tests/core/matvec_vec64_twin.cpp
}
#endif

namespace {

std::vector<const KernelSet*> available_sets() {
    std::vector<const KernelSet*> sets = kernels_available();
#ifdef AVIARY_TEST_VEC64_TWIN
    if (const KernelSet* s = vec64_twin_kernels()) sets.push_back(s);
#endif
    return sets;
}

// One (rows, cols) matrix in the three weight formats the kernels take.
struct Weights {
    std::vector<float> f32;      // the fp32 values the reference uses
    std::vector<uint16_t> bf16;  // bf16 bits
    std::vector<int8_t> i8;
    std::vector<float> scale;
    int64_t rows = 0, cols = 0;

    Weights(const std::vector<float>& w, int64_t rows_, int64_t cols_)
        : f32(w), bf16(w.size()), i8(w.size()), scale(rows_), rows(rows_), cols(cols_) {
        for (size_t i = 0; i < w.size(); ++i) bf16[i] = fp32_to_bf16(w[i]);
        quantize_rows_int8(w.data(), rows, cols, i8.data(), scale.data());
    }
    MatView view(WeightType type) const {
        MatView m;
        m.type = type;
        m.rows = rows;
        m.cols = cols;
        m.data = type == WeightType::F32    ? static_cast<const void*>(f32.data())
                 : type == WeightType::BF16 ? static_cast<const void*>(bf16.data())
                                            : static_cast<const void*>(i8.data());
        m.scale = scale.data();
        return m;
    }
};

}  // namespace

TEST(CpuEngineKernels, EverySetMatchesFloat64DotProducts) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal;
    for (const KernelSet* set : available_sets()) {
        for (int64_t rows : {1, 3, 4, 5, 17, 64}) {
            for (int64_t cols : {1, 7, 8, 16, 33, 64, 100, 257}) {
                for (int64_t batch : {1, 2, 3, 8, 9, 13}) {
                    const int64_t xs = cols + 3, ys = rows + 5;  // strides wider than the data
                    std::vector<float> w(rows * cols), x(batch * xs);
                    for (auto& v : w) v = normal(rng);
                    for (auto& v : x) v = normal(rng);
                    const Weights W(w, rows, cols);
                    for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::I8}) {
                        const MatView m = W.view(type);
                        // rows [r0, r1) only; the rest must keep the poison value
                        const int64_t r0 = rows > 2 ? 1 : 0, r1 = rows;
                        std::vector<float> y(batch * ys, 12345.0f);
                        set->matvec(m, x.data(), xs, batch, y.data(), ys, r0, r1);
                        double worst = 0;
                        for (int64_t b = 0; b < batch; ++b) {
                            // int8: the activations are rounded to int16 codes with s = max|x|/32767, which adds
                            // at most s/2·Σ|w| (cpu_engine_kernels.h)
                            double x_max = 0;
                            for (int64_t c = 0; c < cols; ++c)
                                x_max = std::max(x_max, double(std::fabs(x[b * xs + c])));
                            const double half_step = x_max / 32767 / 2;
                            for (int64_t r = 0; r < ys; ++r) {
                                const float got = y[b * ys + r];
                                if (r < r0 || r >= r1) {
                                    ASSERT_EQ(got, 12345.0f) << set->name << " wrote outside its rows";
                                    continue;
                                }
                                double ref = 0, mag = 0, w_abs = 0;
                                for (int64_t c = 0; c < cols; ++c) {
                                    const double wv = type == WeightType::F32 ? w[r * cols + c]
                                                      : type == WeightType::BF16
                                                          ? bf16_to_fp32(W.bf16[r * cols + c])
                                                          : double(W.i8[r * cols + c]) * W.scale[r];
                                    ref += wv * x[b * xs + c];
                                    mag += std::fabs(wv * x[b * xs + c]);
                                    w_abs += std::fabs(wv);
                                }
                                // fp32 accumulation: error bounded by ~cols·eps·Σ|w·x|; int8 adds the code rounding
                                const double code_err = type == WeightType::I8 ? half_step * w_abs * (1 + 1e-5) : 0;
                                const double err = std::max(0.0, std::fabs(got - ref) - code_err) / (mag + 1e-30);
                                worst = std::max(worst, err);
                                ASSERT_LE(err, 1e-5) << set->name << " type " << int(type) << " rows " << rows
                                                     << " cols " << cols << " batch " << batch << " b " << b << " r "
                                                     << r << ": got " << got << " expected " << ref;
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST(CpuEngineKernels, Int8SetsEqualTheScalarReferenceBitForBit) {
    // int8 sums are exact integers, so every set must give the scalar reference's floats exactly: odd widths, widths
    // across the int64 flush (kInt8Block), batches 1-9, activations with a wide range, and NaN / inf inputs.
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    for (int64_t cols : {5, 16, 33, 1024, 1030, 2500}) {
        const int64_t rows = 13;
        std::vector<float> w(rows * cols);
        for (auto& v : w) v = normal(rng);
        std::vector<int8_t> q(w.size());
        std::vector<float> scale(rows);
        quantize_rows_int8(w.data(), rows, cols, q.data(), scale.data());
        MatView m;
        m.type = WeightType::I8;
        m.data = q.data();
        m.scale = scale.data();
        m.rows = rows;
        m.cols = cols;
        for (int64_t batch : {1, 2, 5, 9}) {
            std::vector<float> x(batch * cols);
            for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 97 == 0 ? 300.0f : 1.0f);
            if (batch == 5) x[cols + cols / 2] = std::numeric_limits<float>::quiet_NaN();  // item 1
            if (batch == 9) x[3 * cols] = -std::numeric_limits<float>::infinity();         // item 3
            std::vector<float> ref(batch * rows), got(batch * rows);
            kernels_scalar().matvec(m, x.data(), cols, batch, ref.data(), rows, 0, rows);
            for (const KernelSet* set : available_sets()) {
                std::fill(got.begin(), got.end(), 0.0f);
                set->matvec(m, x.data(), cols, batch, got.data(), rows, 0, rows);
                for (int64_t i = 0; i < batch * rows; ++i) {
                    const int64_t b = i / rows;
                    if ((batch == 5 && b == 1) || (batch == 9 && b == 3)) {
                        ASSERT_TRUE(std::isnan(got[i])) << set->name << " non-finite input must give NaN";
                        continue;
                    }
                    ASSERT_EQ(got[i], ref[i]) << set->name << " cols " << cols << " batch " << batch << " i " << i;
                }
            }
        }
    }
}

TEST(CpuEngineKernels, BatchedRowsEqualBatchOneBitForBit) {
    // A sequence's logits must not depend on the batch it decodes in (the server's batched requests equal the same
    // requests run alone): for every set and weight type, each item of a batch of 2-17 equals that item alone, bit
    // for bit, over odd widths, row ranges that are not a multiple of any pass and strided inputs/outputs.
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    for (int64_t cols : {7, 16, 100, 768, 2689}) {
        const int64_t rows = 29, xs = cols + 5, ys = rows + 3;
        std::vector<float> w(rows * cols);
        for (auto& v : w) v = normal(rng);
        const Weights W(w, rows, cols);
        for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::I8}) {
            const MatView m = W.view(type);
            for (int64_t batch : {2, 3, 4, 5, 7, 8, 9, 17}) {
                std::vector<float> x(batch * xs);
                for (auto& v : x) v = normal(rng);
                for (const KernelSet* set : available_sets()) {
                    std::vector<float> y(batch * ys, 0.0f), alone(ys, 0.0f);
                    set->matvec(m, x.data(), xs, batch, y.data(), ys, 2, rows);
                    for (int64_t b = 0; b < batch; ++b) {
                        set->matvec(m, x.data() + b * xs, xs, 1, alone.data(), ys, 2, rows);
                        for (int64_t r = 2; r < rows; ++r)
                            ASSERT_EQ(y[b * ys + r], alone[r]) << set->name << " type " << int(type) << " cols " << cols
                                                               << " batch " << batch << " item " << b << " row " << r;
                    }
                }
            }
        }
    }
}

TEST(CpuEngineKernels, SimdSetsAgreeWithTheScalarReference) {
    // A decode-sized matrix: the SIMD result equals the scalar one to fp32 summation-order error.
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    const int64_t rows = 96, cols = 768, batch = 8;
    std::vector<float> w(rows * cols), x(batch * cols);
    for (auto& v : w) v = normal(rng);
    for (auto& v : x) v = normal(rng);
    MatView m;
    m.rows = rows;
    m.cols = cols;
    m.data = w.data();
    std::vector<float> ref(batch * rows), got(batch * rows);
    kernels_scalar().matvec(m, x.data(), cols, batch, ref.data(), rows, 0, rows);
    const auto sets = available_sets();
    std::printf("[ info ] kernel sets on this CPU:");
    for (const KernelSet* s : sets) std::printf(" %s", s->name);
    std::printf(" (best: %s)\n", kernels_best().name);
    for (const KernelSet* set : sets) {
        set->matvec(m, x.data(), cols, batch, got.data(), rows, 0, rows);
        for (int64_t i = 0; i < batch * rows; ++i)
            ASSERT_NEAR(got[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << set->name << " element " << i;
    }
}

TEST(CpuEngineKernels, Bf16RoundingMatchesLibTorch) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (int i = 0; i < 100000; ++i) {
        const float f = normal(rng) * std::pow(10.0f, float(i % 9) - 4.0f);
        const c10::BFloat16 ref(f);  // round to nearest even
        ASSERT_EQ(fp32_to_bf16(f), ref.x) << "value " << f;
        ASSERT_EQ(bf16_to_fp32(ref.x), static_cast<float>(ref));
    }
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
}

TEST(CpuEngineKernels, Int8QuantisationIsSymmetricPerRow) {
    // Row 0: max |w| = 127 -> scale 1 (exact), halves round to even; row 1: all zeros -> scale 1, codes 0.
    const std::vector<float> w = {127.0f, -63.5f, 0.5f, 1.5f, 0.0f, 0.0f, 0.0f, 0.0f};
    std::vector<int8_t> q(8);
    std::vector<float> s(2);
    quantize_rows_int8(w.data(), 2, 4, q.data(), s.data());
    EXPECT_EQ(s[0], 1.0f);
    EXPECT_EQ(q[0], 127);
    EXPECT_EQ(q[1], -64);
    EXPECT_EQ(q[2], 0);
    EXPECT_EQ(q[3], 2);
    EXPECT_EQ(s[1], 1.0f);
    for (int i = 4; i < 8; ++i) {
        EXPECT_EQ(q[i], 0);
    }
    // Row scale max|w|/127: a row with max 2.54 gets 0.02 and its extreme codes are ±127.
    const std::vector<float> w2 = {2.54f, -1.0f, -2.54f, 0.3f};
    quantize_rows_int8(w2.data(), 1, 4, q.data(), s.data());
    EXPECT_FLOAT_EQ(s[0], 2.54f / 127.0f);
    EXPECT_EQ(q[0], 127);
    EXPECT_EQ(q[2], -127);
    EXPECT_EQ(q[1], -50);
    EXPECT_EQ(q[3], 15);
    // Every code equals round-half-even(w / scale) computed with std::nearbyint (the implementation avoids libm).
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> w3(64 * 257);
    for (auto& v : w3) v = normal(rng);
    std::vector<int8_t> q3(w3.size());
    std::vector<float> s3(64);
    quantize_rows_int8(w3.data(), 64, 257, q3.data(), s3.data());
    for (int64_t r = 0; r < 64; ++r)
        for (int64_t c = 0; c < 257; ++c) {
            const float want = std::clamp(std::nearbyint(w3[r * 257 + c] * (1.0f / s3[r])), -127.0f, 127.0f);
            ASSERT_EQ(q3[r * 257 + c], static_cast<int8_t>(want)) << r << ", " << c;
        }
}

TEST(CpuEngineKernels, Int8QuantisationVersionsEqualTheDefinition) {
    // Every version this CPU runs (plain loop, AVX2, AVX-512) against the definition computed here with libm:
    // scale = max |w| over the non-NaN values / 127 (1 for an all-zero row), code = clamp(nearbyint(w·(1/scale)),
    // ±127), NaN -> 0; widths around the vector steps and tails, halves, NaN and infinities.
    const std::vector<std::string> versions = quantize_rows_int8_versions();
    ASSERT_FALSE(versions.empty());
    EXPECT_EQ(versions.front(), "generic");
    std::string ran;
    for (const auto& v : versions) ran += " " + v;
    std::printf("int8 quantisation versions run here:%s\n", ran.c_str());
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (int64_t cols : {1, 7, 8, 15, 16, 17, 33, 100, 768, 2689}) {
        const int64_t rows = 6;
        std::vector<float> w(rows * cols);
        for (auto& v : w) v = normal(rng);
        for (int64_t c = 0; c < cols; c += 5) w[c] = 0.5f * float(int(c % 9) - 4);  // row 0: halves of the scale 1
        w[0] = 127.0f;                                                              // row 0's scale is exactly 1
        for (int64_t c = 0; c < cols; ++c) w[cols + c] = 0.0f;                      // row 1: all zeros
        w[2 * cols + cols / 2] = std::numeric_limits<float>::quiet_NaN();           // row 2: a NaN
        w[3 * cols + cols - 1] = -std::numeric_limits<float>::infinity();           // row 3: -inf
        w[4 * cols] = std::numeric_limits<float>::quiet_NaN();                      // row 4: NaN first
        for (const std::string& version : versions) {
            std::vector<int8_t> q(w.size(), 99);
            std::vector<float> s(rows, -1.0f);
            quantize_rows_int8_version(version, w.data(), rows, cols, q.data(), s.data());
            for (int64_t r = 0; r < rows; ++r) {
                float amax = 0;
                for (int64_t c = 0; c < cols; ++c)
                    if (!std::isnan(w[r * cols + c])) amax = std::max(amax, std::fabs(w[r * cols + c]));
                const float want_s = amax > 0 ? amax / 127.0f : 1.0f;
                ASSERT_EQ(s[r], want_s) << version << " cols " << cols << " row " << r;
                for (int64_t c = 0; c < cols; ++c) {
                    const float v = w[r * cols + c] * (1.0f / want_s);
                    const int want = std::isnan(v) ? 0 : int(std::clamp(std::nearbyint(v), -127.0f, 127.0f));
                    ASSERT_EQ(int(q[r * cols + c]), want)
                        << version << " cols " << cols << " row " << r << " col " << c;
                }
            }
        }
    }
    EXPECT_THROW(quantize_rows_int8_version("avx1024", nullptr, 0, 0, nullptr, nullptr), std::invalid_argument);
}

TEST(CpuEngineKernels, ShortKTilesEqualTheirDefinitionAndFloat64) {
    // The prefill's short-K tiles (the LoRAs' second halves) of every set this CPU runs, against the definition
    // computed here (each output one chain of std::fma over k from zero: so every set gives the same bits) and against
    // float64 (the chain's error is at most K·2⁻²⁴·Σ|h·w|); odd K, rows and column tails, strides wider than the tile,
    // and the output's margins poisoned (NaN) to catch a write outside the tile.
    std::vector<std::string> names = {"baseline"};
    for (const KernelSet* set : available_sets()) names.push_back(set->name);
    std::string ran;
    for (const auto& n : names) ran += " " + n;
    std::printf("short-K tile versions run here (by set name):%s\n", ran.c_str());
    std::mt19937 rng(23);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t K : {1, 3, 32, 64, 65})
        for (int64_t nb : {1, 15, 16, 17, 33, 63, 64}) {
            const int64_t N = nb + 7, hs = K + 5, os = nb + 3, m_max = kShortKTileRows;
            std::vector<float> h(size_t(m_max * hs)), w(size_t(K * N));
            for (auto& v : h) v = normal(rng);
            for (auto& v : w) v = normal(rng);
            for (int64_t m = 1; m <= m_max; ++m)
                for (const std::string& name : names) {
                    const ShortKTileFn tile = short_k_tile_for(name);
                    std::vector<float> out(size_t(m_max * os), std::numeric_limits<float>::quiet_NaN());
                    tile(h.data(), hs, m, w.data() + 2, K, N, nb, out.data(), os);  // columns 2 .. nb + 1 of w
                    for (int64_t r = 0; r < m_max; ++r)
                        for (int64_t c = 0; c < os; ++c) {
                            const float got = out[size_t(r * os + c)];
                            if (r >= m || c >= nb) {
                                ASSERT_TRUE(std::isnan(got)) << name << " wrote outside the tile: row " << r << " col "
                                                             << c << " (m " << m << ", nb " << nb << ")";
                                continue;
                            }
                            float chain = 0.0f;
                            double exact = 0, bound = 0;
                            for (int64_t k = 0; k < K; ++k) {
                                const float a = h[size_t(r * hs + k)], b = w[size_t(k * N + 2 + c)];
                                chain = std::fma(a, b, chain);
                                exact += double(a) * double(b);
                                bound += std::fabs(double(a) * double(b));
                            }
                            ASSERT_EQ(got, chain)
                                << name << " K " << K << " m " << m << " nb " << nb << " row " << r << " col " << c;
                            ASSERT_LE(std::fabs(double(got) - exact), double(K) * std::ldexp(bound, -24))
                                << name << " K " << K << " row " << r << " col " << c;
                        }
                }
        }
}

TEST(CpuEngineKernels, UnknownOrUnsupportedSetIsAnError) {
    EXPECT_THROW(kernels_named("avx1024"), aviary::Error);
    if (!kernels_avx512()) {
        EXPECT_THROW(kernels_named("avx512"), aviary::Error);
    }
    if (!kernels_avx512vnni()) {
        EXPECT_THROW(kernels_named("avx512vnni"), aviary::Error);
    }
    EXPECT_STREQ(kernels_named("scalar").name, "scalar");
    EXPECT_STREQ(kernels_named("auto").name, kernels_available().back()->name);
    for (const KernelSet* s : kernels_available()) EXPECT_EQ(&kernels_named(s->name), s);
}

// The worker pool runs every chunk of every job exactly once, with any chunk count, job after job (a late worker
// must never run a chunk of a finished job), and a pool of one thread runs inline.
TEST(CpuEngineKernels, ThreadPoolRunsEveryChunkExactlyOnce) {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        EXPECT_EQ(pool.size(), threads);
        std::mt19937 rng(threads);
        for (int job = 0; job < 3000; ++job) {
            const int n = 1 + static_cast<int>(rng() % 40);
            std::vector<std::atomic<int>> hits(n);
            for (auto& h : hits) h.store(0);
            pool.run(n, [&](int c) { hits[c].fetch_add(1); });
            for (int c = 0; c < n; ++c) {
                ASSERT_EQ(hits[c].load(), 1) << "threads " << threads << " job " << job;
            }
        }
        int ran = 0;
        pool.run(0, [&](int) { ++ran; });
        EXPECT_EQ(ran, 0);
    }
}
