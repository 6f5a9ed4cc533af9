// Kaldi-compatible log mel filterbank as AST uses it (../shared/reference/multimodal_spec.md B.4), following
// torchaudio.compliance.kaldi.fbank: snip_edges framing, per-frame DC removal, pre-emphasis with the first sample
// replicated, symmetric Hann ("hanning") window, zero-pad to a power of two, |rfft|², triangular filters in the
// Kaldi mel domain 1127·ln(1 + f/700) (last FFT bin gets no weight), log floored at FLT_EPSILON.
#include <cfloat>
#include <cmath>

#include "aviary/audio/front_end.h"
#include "aviary/core/error.h"

namespace aviary::audio {

namespace {
double kaldi_mel(double hz) {
    return 1127.0 * std::log(1.0 + hz / 700.0);
}
}  // namespace

Features kaldi_fbank(const std::vector<float>& wave_in, const KaldiFbankOptions& o) {
    const int64_t win = int64_t(o.sample_rate * o.frame_length_ms * 0.001);
    const int64_t shift = int64_t(o.sample_rate * o.frame_shift_ms * 0.001);
    int64_t padded = 1;
    while (padded < win) padded <<= 1;
    const int64_t n = int64_t(wave_in.size());
    AVIARY_CHECK(win >= 2 && shift > 0, "kaldi_fbank: bad frame length/shift ", o.frame_length_ms, "/",
                 o.frame_shift_ms, " ms");
    AVIARY_CHECK(n >= win, "kaldi_fbank: the waveform has ", n, " samples, fewer than one ", win, "-sample window");
    std::vector<double> wave(wave_in.begin(), wave_in.end());
    if (o.subtract_waveform_mean) {
        double mean = 0;
        for (double v : wave) mean += v;
        mean /= double(n);
        for (double& v : wave) v -= mean;
    }
    const double nyquist = 0.5 * o.sample_rate;
    const double high = o.high_freq <= 0 ? o.high_freq + nyquist : o.high_freq;
    AVIARY_CHECK(o.low_freq >= 0 && o.low_freq < high && high <= nyquist, "kaldi_fbank: bad band ", o.low_freq, "..",
                 high, " Hz");
    // Filters (n_mels × padded/2), Kaldi: equal spacing in mel over [low, high] with n_mels + 2 edges.
    const int64_t n_fft_bins = padded / 2;
    const double bin_hz = double(o.sample_rate) / double(padded);
    const double mel_lo = kaldi_mel(o.low_freq), mel_hi = kaldi_mel(high);
    const double delta = (mel_hi - mel_lo) / (o.n_mels + 1);
    std::vector<double> banks(static_cast<size_t>(o.n_mels * n_fft_bins), 0.0);
    for (int m = 0; m < o.n_mels; ++m) {
        const double left = mel_lo + m * delta, center = mel_lo + (m + 1) * delta, right = mel_lo + (m + 2) * delta;
        for (int64_t f = 0; f < n_fft_bins; ++f) {
            const double mel = kaldi_mel(bin_hz * double(f));
            const double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
            banks[size_t(m * n_fft_bins + f)] = std::max(0.0, std::min(up, down));
        }
    }
    std::vector<double> window(static_cast<size_t>(win));
    for (int64_t i = 0; i < win; ++i)
        window[size_t(i)] = 0.5 - 0.5 * std::cos(2.0 * M_PI * double(i) / double(win - 1));
    Features out;
    out.frames = 1 + (n - win) / shift;
    out.bins = o.n_mels;
    out.data.resize(size_t(out.frames * out.bins));
    std::vector<double> frame(static_cast<size_t>(win)), re(static_cast<size_t>(padded)),
        im(static_cast<size_t>(padded));
    for (int64_t t = 0; t < out.frames; ++t) {
        for (int64_t i = 0; i < win; ++i) frame[size_t(i)] = wave[size_t(t * shift + i)];
        if (o.remove_dc_offset) {
            double mean = 0;
            for (double v : frame) mean += v;
            mean /= double(win);
            for (double& v : frame) v -= mean;
        }
        // x[j] -= c·x[max(0, j−1)], right to left so every term uses the original neighbour
        for (int64_t j = win - 1; j >= 0; --j) frame[size_t(j)] -= o.preemphasis * frame[size_t(j > 0 ? j - 1 : 0)];
        std::fill(re.begin(), re.end(), 0.0);
        std::fill(im.begin(), im.end(), 0.0);
        for (int64_t i = 0; i < win; ++i) re[size_t(i)] = frame[size_t(i)] * window[size_t(i)];
        fft_radix2(re, im);
        for (int m = 0; m < o.n_mels; ++m) {
            double e = 0;
            for (int64_t f = 0; f < n_fft_bins; ++f)
                e +=
                    banks[size_t(m * n_fft_bins + f)] * (re[size_t(f)] * re[size_t(f)] + im[size_t(f)] * im[size_t(f)]);
            out.data[size_t(t * out.bins + m)] = float(std::log(std::max(e, double(FLT_EPSILON))));
        }
    }
    return out;
}

}  // namespace aviary::audio
