// PANNs / HTS-AT / AudioRWKV log-mel front end (../shared/reference/multimodal_spec.md B.2, B.4):
// torchlibrosa Spectrogram(n_fft 1024, hop 320, hann, center, reflect, power 2) -> LogmelFilterBank(librosa
// Slaney filters 64 × 50–14 000 Hz, ref 1, amin 1e-10, top_db None). Filter formula: librosa.filters.mel.
#include <cmath>

#include "aviary/audio/front_end.h"
#include "aviary/core/error.h"

namespace aviary::audio {

namespace {
constexpr double kSlaneyFreqStep = 200.0 / 3.0;  // Hz per mel below the break
constexpr double kSlaneyBreakHz = 1000.0;        // linear below, logarithmic above
const double kSlaneyLogStep = std::log(6.4) / 27.0;
}  // namespace

double hz_to_mel_slaney(double hz) {
    const double min_log_mel = kSlaneyBreakHz / kSlaneyFreqStep;
    if (hz < kSlaneyBreakHz) return hz / kSlaneyFreqStep;
    return min_log_mel + std::log(hz / kSlaneyBreakHz) / kSlaneyLogStep;
}

double mel_to_hz_slaney(double mel) {
    const double min_log_mel = kSlaneyBreakHz / kSlaneyFreqStep;
    if (mel < min_log_mel) return mel * kSlaneyFreqStep;
    return kSlaneyBreakHz * std::exp(kSlaneyLogStep * (mel - min_log_mel));
}

std::vector<double> slaney_mel_points(int n_mels, double f_min, double f_max) {
    std::vector<double> mel_hz(static_cast<size_t>(n_mels + 2));
    const double m0 = hz_to_mel_slaney(f_min), m1 = hz_to_mel_slaney(f_max);
    for (int i = 0; i < n_mels + 2; ++i) mel_hz[size_t(i)] = mel_to_hz_slaney(m0 + (m1 - m0) * i / (n_mels + 1));
    return mel_hz;
}

std::vector<double> slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double f_min, double f_max) {
    AVIARY_CHECK(n_mels > 0 && n_fft > 1 && f_min >= 0 && f_max > f_min && f_max <= sample_rate / 2.0,
                 "mel filterbank: need 0 <= f_min < f_max <= Nyquist, got ", f_min, "..", f_max, " Hz at ", sample_rate,
                 " Hz");
    const int n_freq = n_fft / 2 + 1;
    std::vector<double> fft_hz(static_cast<size_t>(n_freq));
    for (int i = 0; i < n_freq; ++i) fft_hz[size_t(i)] = double(i) * sample_rate / n_fft;  // linspace(0, sr/2)
    const std::vector<double> mel_hz = slaney_mel_points(n_mels, f_min, f_max);
    std::vector<double> w(static_cast<size_t>(n_mels) * size_t(n_freq), 0.0);
    for (int m = 0; m < n_mels; ++m) {
        const double lo = mel_hz[size_t(m)], c = mel_hz[size_t(m + 1)], hi = mel_hz[size_t(m + 2)];
        const double enorm = 2.0 / (hi - lo);  // Slaney: unit area per filter
        for (int f = 0; f < n_freq; ++f) {
            // weights = max(0, min((f − lo)/(c − lo), (hi − f)/(hi − c)))
            const double lower = (fft_hz[size_t(f)] - lo) / (c - lo), upper = (hi - fft_hz[size_t(f)]) / (hi - c);
            w[size_t(m) * size_t(n_freq) + size_t(f)] = std::max(0.0, std::min(lower, upper)) * enorm;
        }
    }
    return w;
}

Features log_mel(const std::vector<float>& wave, const LogMelOptions& o) {
    AVIARY_CHECK(!wave.empty(), "log_mel: the waveform is empty");
    const int64_t n = int64_t(wave.size()), pad = o.n_fft / 2;
    AVIARY_CHECK(n > pad, "log_mel: the waveform has ", n, " samples; reflect padding needs more than ", pad);
    const int n_freq = o.n_fft / 2 + 1;
    const std::vector<double> fb = slaney_mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, o.f_min, o.f_max);
    std::vector<double> window(static_cast<size_t>(o.n_fft));
    for (int i = 0; i < o.n_fft; ++i) window[size_t(i)] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / o.n_fft);  // periodic
    // center=True, pad_mode='reflect': x[-i] = x[i], x[n-1+i] = x[n-1-i]
    auto sample = [&](int64_t i) -> double {
        if (i < 0) i = -i;
        if (i >= n) i = 2 * (n - 1) - i;
        return wave[size_t(i)];
    };
    Features out;
    out.frames = 1 + n / o.hop;
    out.bins = o.n_mels;
    out.data.resize(size_t(out.frames * out.bins));
    std::vector<double> re(static_cast<size_t>(o.n_fft)), im(static_cast<size_t>(o.n_fft)),
        power(static_cast<size_t>(n_freq));
    for (int64_t t = 0; t < out.frames; ++t) {
        const int64_t start = t * o.hop - pad;
        for (int i = 0; i < o.n_fft; ++i) {
            re[size_t(i)] = sample(start + i) * window[size_t(i)];
            im[size_t(i)] = 0.0;
        }
        fft_radix2(re, im);
        for (int f = 0; f < n_freq; ++f)
            power[size_t(f)] = re[size_t(f)] * re[size_t(f)] + im[size_t(f)] * im[size_t(f)];
        for (int m = 0; m < o.n_mels; ++m) {
            double e = 0;
            const double* row = fb.data() + size_t(m) * size_t(n_freq);
            for (int f = 0; f < n_freq; ++f) e += row[f] * power[size_t(f)];
            out.data[size_t(t * out.bins + m)] = float(10.0 * std::log10(std::max(e, o.amin)));  // power_to_db, ref 1
        }
    }
    return out;
}

}  // namespace aviary::audio
