// A log-mel spectrogram for display in the Audio panel, computed on the worker: periodic Hann window,
// centred frames with reflect padding, |FFT|², HTK mel filterbank without normalisation, 10·log10 with an
// 80 dB floor below the maximum — the defaults of torchaudio's MelSpectrogram + AmplitudeToDB, which the
// tests use as the reference (tests/studio/fixtures). The audio module's own front end replaces it for tags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace aviary::studio {

struct LogMelOptions {
    int n_fft = 1024;  // a power of two
    int hop = 320;
    int n_mels = 64;
    double f_min = 0;
    double f_max = 0;  // 0: sample_rate / 2
    double top_db = 80;
};

struct Spectrogram {
    int n_mels = 0, n_frames = 0;
    double hop_seconds = 0;
    std::vector<double> band_hz;  // (n_mels) centre frequency of each mel band
    std::vector<float> db;        // (n_frames, n_mels) row-major
    float max_db = 0, min_db = 0;
    float at(int frame, int mel) const { return db[size_t(frame) * size_t(n_mels) + size_t(mel)]; }
};

double hz_to_mel_htk(double hz);
double mel_to_hz_htk(double mel);
// (n_fft/2 + 1, n_mels) triangular filters, row-major (torchaudio melscale_fbanks, norm=None, htk).
std::vector<double> mel_filterbank(int n_fft, int n_mels, double sample_rate, double f_min, double f_max);
// In-place radix-2 FFT of (re, im); n must be a power of two.
void fft_radix2(std::vector<double>& re, std::vector<double>& im);
Spectrogram log_mel_spectrogram(const std::vector<float>& samples, int sample_rate, const LogMelOptions& options = {});

}  // namespace aviary::studio
