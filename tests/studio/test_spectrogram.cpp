// The Audio panel's spectrogram (apps/studio/spectrogram.cpp) is the tagger's front end, not a copy of it: bit for
// bit audio::model_log_mel of the loaded model's configuration over the whole sound, whose clip frames are the
// features the tagger reads; band centres are the peaks of the module's Slaney filters; without a model, the
// default front end and no clip; bad input is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/front_end.h"
#include "aviary/audio/tagger.h"
#include "common/error_of.h"
#include "spectrogram.h"

using namespace aviary;
using namespace aviary::studio;

namespace {

// Seeded noise, a 1 kHz tone and a rising chirp.
std::vector<float> test_sound(int rate, double seconds) {
    std::mt19937 rng(11);
    std::normal_distribution<float> noise(0.f, 0.05f);
    std::vector<float> x(size_t(rate * seconds));
    for (size_t i = 0; i < x.size(); ++i) {
        const double t = double(i) / rate;
        x[i] = float(0.3 * std::sin(2 * M_PI * 1000 * t) + 0.2 * std::sin(2 * M_PI * (200 + 600 * t) * t)) + noise(rng);
    }
    return x;
}

size_t bits_differ(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; ++i) d += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

}  // namespace

TEST(StudioSpectrogram, IsTheTaggersLogMel) {
    audio::AudioRwkvConfig c;  // a front end other than the default, so the model's configuration must be used
    c.hop = 640, c.n_mels = 48, c.clip_seconds = 1.0;
    const std::vector<float> x = test_sound(22050, 3.0);
    const Spectrogram s = model_spectrogram(x, 22050, &c);
    const audio::Features whole = audio::model_log_mel(c, x, 22050, 0);
    ASSERT_EQ(s.n_mels, 48);
    ASSERT_EQ(s.n_frames, whole.frames);
    ASSERT_EQ(s.db.size(), whole.data.size());
    EXPECT_EQ(bits_differ(s.db, whole.data, s.db.size()), 0u);
    EXPECT_EQ(s.sample_rate, 32000);
    EXPECT_DOUBLE_EQ(s.hop_seconds, 0.02);
    EXPECT_NEAR(double(s.n_frames), 3.0 * 50 + 1, 1.0);
    // The clip: the frames the tagger reads, identical wherever its window holds only the sound (the clip's last
    // n_fft/2 samples are reflect-padded from the clip's own end there, from the sound's continuation here).
    ASSERT_EQ(s.clip_frames, c.frames());
    const audio::Features clip = audio::model_log_mel(c, x, 22050, c.clip_samples());
    const int64_t inside = (c.clip_samples() - audio::log_mel_options(c).n_fft / 2) / c.hop;
    EXPECT_EQ(bits_differ(s.db, clip.data, size_t(inside * c.n_mels)), 0u);
    const auto [lo, hi] = std::minmax_element(whole.data.begin(), whole.data.end());
    EXPECT_EQ(s.min_db, *lo);
    EXPECT_EQ(s.max_db, *hi);
}

TEST(StudioSpectrogram, BandCentresArePeaksOfTheFilters) {
    const audio::AudioRwkvConfig c;  // the shipped model's front end: 32 kHz, 64 bands, 50 Hz - 14 kHz
    const Spectrogram s = model_spectrogram(test_sound(32000, 0.5), 32000, &c);
    const audio::LogMelOptions o = audio::log_mel_options(c);
    const std::vector<double> fb = audio::slaney_mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, o.f_min, o.f_max);
    const int n_freq = o.n_fft / 2 + 1;
    const double bin_hz = double(o.sample_rate) / o.n_fft;
    ASSERT_EQ(s.band_hz.size(), size_t(o.n_mels));
    for (int m = 0; m < o.n_mels; ++m) {
        const double* row = fb.data() + size_t(m) * n_freq;
        const int peak = int(std::max_element(row, row + n_freq) - row);
        EXPECT_NEAR(s.band_hz[size_t(m)], peak * bin_hz, bin_hz) << "band " << m;
        if (m > 0) {
            EXPECT_GT(s.band_hz[size_t(m)], s.band_hz[size_t(m - 1)]);
        }
    }
    EXPECT_GT(s.band_hz.front(), o.f_min);
    EXPECT_LT(s.band_hz.back(), o.f_max);
}

TEST(StudioSpectrogram, WithoutAModelTheDefaultFrontEndAndNoClip) {
    const std::vector<float> x = test_sound(16000, 1.0);
    const Spectrogram s = model_spectrogram(x, 16000, nullptr);
    const audio::Features f = audio::model_log_mel(audio::AudioRwkvConfig{}, x, 16000, 0);
    ASSERT_EQ(s.db.size(), f.data.size());
    EXPECT_EQ(bits_differ(s.db, f.data, f.data.size()), 0u);
    EXPECT_EQ(s.clip_frames, 0);
    EXPECT_EQ(s.sample_rate, 32000);
}

TEST(StudioSpectrogram, RejectsBadInput) {
    using test::error_of;
    const std::string short_sound = error_of([] { model_spectrogram(std::vector<float>(100, 0.1f), 16000, nullptr); });
    EXPECT_NE(short_sound.find("reflect padding needs more than 512"), std::string::npos) << short_sound;
    const std::string rate = error_of([] { model_spectrogram(std::vector<float>(4000, 0.1f), 0, nullptr); });
    EXPECT_NE(rate.find("rates must be positive"), std::string::npos) << rate;
}
