// Display log-mel spectrogram (apps/studio/spectrogram.cpp) against torchaudio 0.13 MelSpectrogram +
// AmplitudeToDB in float64 (fixtures/logmel_torchaudio.json, made by fixtures/make_logmel_fixture.py), the
// FFT against a float64 direct DFT, and the mel scale's HTK formula.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "spectrogram.h"

using namespace aviary::studio;

TEST(StudioSpectrogram, FftMatchesDirectDft) {
    std::mt19937_64 rng(11);
    std::normal_distribution<double> g;
    for (size_t n : {size_t(2), size_t(16), size_t(512)}) {
        std::vector<double> re(n), im(n);
        for (size_t i = 0; i < n; ++i) re[i] = g(rng), im[i] = g(rng);
        const std::vector<double> re0 = re, im0 = im;
        fft_radix2(re, im);
        double worst = 0, scale = 0;
        size_t worst_k = 0;
        for (size_t k = 0; k < n; ++k) {
            double sr = 0, si = 0;  // X[k] = sum x[j] e^{-2 pi i j k / n}
            for (size_t j = 0; j < n; ++j) {
                const double a = -2 * M_PI * double(j * k % n) / double(n);
                sr += re0[j] * std::cos(a) - im0[j] * std::sin(a);
                si += re0[j] * std::sin(a) + im0[j] * std::cos(a);
            }
            const double d = std::hypot(re[k] - sr, im[k] - si);
            if (d > worst) worst = d, worst_k = k;
            scale = std::max(scale, std::hypot(sr, si));
        }
        EXPECT_LT(worst / scale, 1e-12) << "n " << n << " worst bin " << worst_k;
    }
}

TEST(StudioSpectrogram, HtkMelScale) {
    EXPECT_NEAR(hz_to_mel_htk(0), 0, 1e-12);
    EXPECT_NEAR(hz_to_mel_htk(700), 2595 * std::log10(2.0), 1e-9);
    EXPECT_NEAR(mel_to_hz_htk(hz_to_mel_htk(4321.5)), 4321.5, 1e-9);
}

TEST(StudioSpectrogram, MatchesTorchaudio) {
    std::ifstream f(std::string(AVIARY_SOURCE_DIR) + "/tests/studio/fixtures/logmel_torchaudio.json");
    ASSERT_TRUE(f.good()) << "missing fixture: run tests/studio/fixtures/make_logmel_fixture.py";
    const nlohmann::json j = nlohmann::json::parse(f);
    const std::vector<float> samples = j["samples"].get<std::vector<float>>();
    const std::vector<double> ref = j["db"].get<std::vector<double>>();
    LogMelOptions o;
    o.n_fft = j["n_fft"], o.hop = j["hop"], o.n_mels = j["n_mels"], o.top_db = j["top_db"];
    const Spectrogram s = log_mel_spectrogram(samples, j["sample_rate"].get<int>(), o);
    ASSERT_EQ(s.n_frames, j["n_frames"].get<int>());
    ASSERT_EQ(s.n_mels, o.n_mels);
    ASSERT_EQ(s.db.size(), ref.size());
    // Tolerance: 1e-3 dB (the output is float32; the reference float64).
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < ref.size(); ++i)
        if (std::fabs(s.db[i] - ref[i]) > worst) worst = std::fabs(s.db[i] - ref[i]), at = i;
    EXPECT_LT(worst, 1e-3) << "worst |ours - torchaudio| = " << worst << " dB at frame " << at / s.n_mels << " mel "
                           << at % s.n_mels << " (ours " << s.db[at] << ", torchaudio " << ref[at] << ")";
    double max_ref = -1e30;
    for (double v : ref) max_ref = std::max(max_ref, v);
    EXPECT_NEAR(s.max_db, max_ref, 1e-3);
    EXPECT_GE(s.min_db, s.max_db - 80 - 1e-3);
}

TEST(StudioSpectrogram, RejectsBadInput) {
    LogMelOptions o;
    o.n_fft = 500;
    EXPECT_ANY_THROW(log_mel_spectrogram(std::vector<float>(4000, 0.f), 16000, o));
    EXPECT_ANY_THROW(log_mel_spectrogram(std::vector<float>(10, 0.f), 16000, {}));
    EXPECT_ANY_THROW(log_mel_spectrogram(std::vector<float>(4000, 0.f), 0, {}));
}
