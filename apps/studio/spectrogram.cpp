// Display log-mel spectrogram (spectrogram.h): torchaudio MelSpectrogram(center=True, pad_mode="reflect",
// power=2, norm=None, mel_scale="htk") + AmplitudeToDB("power", top_db), written out with a plain FFT.
#include "spectrogram.h"

#include <algorithm>
#include <cmath>

#include "aviary/core/error.h"

namespace aviary::studio {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

double hz_to_mel_htk(double hz) {
    return 2595.0 * std::log10(1.0 + hz / 700.0);
}
double mel_to_hz_htk(double mel) {
    return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
}

std::vector<double> mel_filterbank(int n_fft, int n_mels, double sample_rate, double f_min, double f_max) {
    const int n_freqs = n_fft / 2 + 1;
    std::vector<double> fb(size_t(n_freqs) * n_mels, 0.0);
    // n_mels + 2 points equally spaced in mel, converted back to Hz (torchaudio melscale_fbanks).
    const double m_min = hz_to_mel_htk(f_min), m_max = hz_to_mel_htk(f_max);
    std::vector<double> f_pts(n_mels + 2);
    for (int i = 0; i < n_mels + 2; ++i) f_pts[i] = mel_to_hz_htk(m_min + (m_max - m_min) * i / (n_mels + 1));
    for (int k = 0; k < n_freqs; ++k) {
        const double f = (sample_rate / 2.0) * k / (n_freqs - 1);  // linspace(0, sr/2, n_freqs)
        for (int m = 0; m < n_mels; ++m) {
            // down = (f - f_pts[m]) / (f_pts[m+1] - f_pts[m]); up = (f_pts[m+2] - f) / (f_pts[m+2] - f_pts[m+1])
            const double down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
            const double up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
            fb[size_t(k) * n_mels + m] = std::max(0.0, std::min(down, up));
        }
    }
    return fb;
}

void fft_radix2(std::vector<double>& re, std::vector<double>& im) {
    const size_t n = re.size();
    AVIARY_CHECK(n > 0 && (n & (n - 1)) == 0 && im.size() == n, "fft_radix2: size must be a power of two, got ", n);
    for (size_t i = 1, j = 0; i < n; ++i) {  // bit reversal
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) std::swap(re[i], re[j]), std::swap(im[i], im[j]);
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        const double ang = -2 * kPi / double(len);
        for (size_t i = 0; i < n; i += len)
            for (size_t k = 0; k < len / 2; ++k) {
                const double wr = std::cos(ang * double(k)), wi = std::sin(ang * double(k));
                const size_t a = i + k, b = i + k + len / 2;
                const double tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr, im[b] = im[a] - ti;
                re[a] += tr, im[a] += ti;
            }
    }
}

Spectrogram log_mel_spectrogram(const std::vector<float>& samples, int sample_rate, const LogMelOptions& o) {
    AVIARY_CHECK(sample_rate > 0, "log-mel: sample rate must be positive, got ", sample_rate);
    AVIARY_CHECK(o.n_fft >= 16 && (o.n_fft & (o.n_fft - 1)) == 0, "log-mel: n_fft must be a power of two, got ",
                 o.n_fft);
    AVIARY_CHECK(o.hop > 0 && o.n_mels > 0, "log-mel: hop and n_mels must be positive");
    const int pad = o.n_fft / 2;
    AVIARY_CHECK(samples.size() > size_t(pad), "log-mel: the sound is too short (", samples.size(),
                 " samples; at least ", pad + 1, " needed)");
    const double f_max = o.f_max > 0 ? o.f_max : sample_rate / 2.0;
    const std::vector<double> fb = mel_filterbank(o.n_fft, o.n_mels, sample_rate, o.f_min, f_max);
    const int n_freqs = o.n_fft / 2 + 1;
    const int64_t len = int64_t(samples.size());
    // reflect padding by n_fft/2 on both sides (torch.stft center=True)
    auto sample_at = [&](int64_t i) -> double {
        if (i < 0) i = -i;
        if (i >= len) i = 2 * (len - 1) - i;
        return samples[size_t(i)];
    };
    Spectrogram s;
    s.n_mels = o.n_mels;
    s.n_frames = int(1 + len / o.hop);
    s.hop_seconds = double(o.hop) / sample_rate;
    s.db.assign(size_t(s.n_frames) * o.n_mels, 0.f);
    std::vector<double> window(o.n_fft);
    for (int i = 0; i < o.n_fft; ++i) window[i] = 0.5 - 0.5 * std::cos(2 * kPi * i / o.n_fft);  // periodic Hann
    std::vector<double> re(o.n_fft), im(o.n_fft), power(n_freqs);
    double max_db = -1e30;
    for (int t = 0; t < s.n_frames; ++t) {
        const int64_t start = int64_t(t) * o.hop - pad;
        for (int i = 0; i < o.n_fft; ++i) re[i] = sample_at(start + i) * window[i], im[i] = 0;
        fft_radix2(re, im);
        for (int k = 0; k < n_freqs; ++k) power[k] = re[k] * re[k] + im[k] * im[k];
        for (int m = 0; m < o.n_mels; ++m) {
            double e = 0;
            for (int k = 0; k < n_freqs; ++k) e += power[k] * fb[size_t(k) * o.n_mels + m];
            const double db = 10.0 * std::log10(std::max(e, 1e-10));  // AmplitudeToDB(stype="power")
            s.db[size_t(t) * o.n_mels + m] = float(db);
            max_db = std::max(max_db, db);
        }
    }
    const float floor_db = float(max_db - o.top_db);
    float min_db = float(max_db);
    for (float& v : s.db) v = std::max(v, floor_db), min_db = std::min(min_db, v);
    s.max_db = float(max_db);
    s.min_db = min_db;
    const double m_min = hz_to_mel_htk(o.f_min), m_max = hz_to_mel_htk(f_max);
    for (int m = 0; m < o.n_mels; ++m)
        s.band_hz.push_back(mel_to_hz_htk(m_min + (m_max - m_min) * (m + 1) / (o.n_mels + 1)));
    return s;
}

}  // namespace aviary::studio
