// Plot helpers (apps/studio/plot_data.cpp): nice steps and ticks against hand-worked cases and properties on
// seeded random ranges, axis ranges (linear and log), waveform min/max columns against a brute-force
// reference, nearest-point lookup.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "plot_data.h"

using namespace aviary::studio;

TEST(StudioPlot, NiceStepHandWorked) {
    EXPECT_DOUBLE_EQ(nice_step(10, 5), 2);       // raw 2
    EXPECT_DOUBLE_EQ(nice_step(0.37, 5), 0.1);   // raw 0.074 -> 0.1
    EXPECT_DOUBLE_EQ(nice_step(7e-4, 4), 2e-4);  // raw 1.75e-4 -> 2e-4
    EXPECT_DOUBLE_EQ(nice_step(500, 6), 100);    // raw 83.3 -> 100
    EXPECT_DOUBLE_EQ(nice_step(12, 5), 5);       // raw 2.4 -> 5
}

TEST(StudioPlot, NiceTicksHandWorked) {
    const std::vector<double> t = nice_ticks(0.13, 0.97, 5);  // step 0.2
    const std::vector<double> expected = {0.2, 0.4, 0.6, 0.8};
    ASSERT_EQ(t.size(), expected.size());
    for (size_t i = 0; i < t.size(); ++i) EXPECT_NEAR(t[i], expected[i], 1e-12) << "tick " << i;
    const std::vector<double> z = nice_ticks(-1, 1, 4);  // step 0.5, includes an exact 0
    ASSERT_EQ(z.size(), 5u);
    EXPECT_EQ(z[2], 0.0);
    EXPECT_FALSE(std::signbit(z[2]));
    EXPECT_TRUE(nice_ticks(1, 1, 5).empty());
    EXPECT_TRUE(nice_ticks(2, 1, 5).empty());
}

TEST(StudioPlot, NiceTicksPropertiesOnRandomRanges) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> mag(-6, 6), u(0, 1);
    for (int trial = 0; trial < 2000; ++trial) {
        const double scale = std::pow(10.0, mag(rng));
        const double lo = (u(rng) - 0.5) * scale, hi = lo + (0.01 + u(rng)) * scale;
        const int max_ticks = 2 + int(u(rng) * 8);
        const auto t = nice_ticks(lo, hi, max_ticks);
        const double step = nice_step(hi - lo, max_ticks);
        const double mant = step / std::pow(10.0, std::floor(std::log10(step) + 1e-12));
        ASSERT_TRUE(std::fabs(mant - 1) < 1e-9 || std::fabs(mant - 2) < 1e-9 || std::fabs(mant - 5) < 1e-9)
            << "step " << step << " for [" << lo << ", " << hi << "]";
        ASSERT_GE(t.size(), 1u) << "[" << lo << ", " << hi << "] max " << max_ticks;
        ASSERT_LE(t.size(), size_t(max_ticks) + 1) << "[" << lo << ", " << hi << "] max " << max_ticks;
        for (size_t i = 0; i < t.size(); ++i) {
            ASSERT_GE(t[i], lo - (hi - lo) * 1e-9);
            ASSERT_LE(t[i], hi + (hi - lo) * 1e-9);
            if (i > 0) {
                ASSERT_NEAR(t[i] - t[i - 1], step, step * 1e-9);
            }
        }
        // Every multiple of the step inside the range is there: none missing at either end.
        ASSERT_LT(t.front() - step, lo);
        ASSERT_GT(t.back() + step, hi);
    }
}

TEST(StudioPlot, DataRange) {
    AxisRange r = data_range({1, 3, 2, NAN, INFINITY}, 0.1, false);
    EXPECT_DOUBLE_EQ(r.lo, 0.8);
    EXPECT_DOUBLE_EQ(r.hi, 3.2);
    r = data_range({5}, 0.1, false);
    EXPECT_DOUBLE_EQ(r.lo, 4.5);
    EXPECT_DOUBLE_EQ(r.hi, 5.5);
    r = data_range({}, 0.1, false);
    EXPECT_DOUBLE_EQ(r.lo, 0);
    EXPECT_DOUBLE_EQ(r.hi, 1);
    r = data_range({0.01, 10, -3, 0}, 0.0, true);  // non-positive values are skipped on a log axis
    EXPECT_NEAR(r.lo, -2, 1e-12);
    EXPECT_NEAR(r.hi, 1, 1e-12);
}

TEST(StudioPlot, MinMaxColumnsMatchBruteForce) {
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0, 0.3f);
    for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(4801)}) {
        std::vector<float> s(n);
        for (auto& v : s) v = g(rng);
        for (int cols : {1, 5, 640, 5000}) {
            std::vector<float> mins, maxs;
            min_max_columns(s.data(), n, cols, mins, maxs);
            ASSERT_EQ(mins.size(), size_t(cols));
            for (int c = 0; c < cols; ++c) {
                // Reference: slice [floor(n c / cols), floor(n (c+1) / cols)), or the sample at its start when empty.
                size_t a = size_t(std::floor(double(n) * c / cols)), b = size_t(std::floor(double(n) * (c + 1) / cols));
                a = std::min(a, n - 1);
                if (b <= a) b = a + 1;
                float lo = s[a], hi = s[a];
                for (size_t i = a; i < b && i < n; ++i) lo = std::min(lo, s[i]), hi = std::max(hi, s[i]);
                ASSERT_EQ(mins[size_t(c)], lo) << "n " << n << " cols " << cols << " column " << c;
                ASSERT_EQ(maxs[size_t(c)], hi) << "n " << n << " cols " << cols << " column " << c;
            }
        }
    }
}

TEST(StudioPlot, NearestIndex) {
    const std::vector<double> xs = {1, 2, 4, 8};
    EXPECT_EQ(nearest_index({}, 3), -1);
    EXPECT_EQ(nearest_index(xs, -5), 0);
    EXPECT_EQ(nearest_index(xs, 2.9), 1);
    EXPECT_EQ(nearest_index(xs, 3.1), 2);
    EXPECT_EQ(nearest_index(xs, 100), 3);
}
