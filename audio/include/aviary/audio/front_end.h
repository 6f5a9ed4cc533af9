// Audio front ends, every constant named (../shared/reference/multimodal_spec.md B.2, B.4):
// - log_mel: PANNs / HTS-AT / AudioRWKV log-mel (torchlibrosa STFT: Hann (periodic), center, reflect pad, power 2;
//   librosa Slaney mel filters with Slaney area normalisation; 10·log10(max(·, amin)), ref 1, no top_db).
// - kaldi_fbank: the Kaldi-compatible fbank AST uses (torchaudio.compliance.kaldi.fbank with htk_compat, hanning
//   window, dither 0, no energy; snip_edges, DC removal per frame, pre-emphasis 0.97, power spectrum, Kaldi mel
//   scale 1127·ln(1 + f/700), natural log floored at FLT_EPSILON).
// Plain C++ (double precision inside, a radix-2 FFT): no LibTorch needed.
#pragma once
#include <cstdint>
#include <vector>

namespace aviary::audio {

// A (frames × bins) row-major feature matrix.
struct Features {
    int64_t frames = 0, bins = 0;
    std::vector<float> data;
    float at(int64_t t, int64_t b) const { return data[size_t(t * bins + b)]; }
};

struct LogMelOptions {
    int sample_rate = 32000;  // PANNs/HTS-AT
    int n_fft = 1024;         // = window length
    int hop = 320;            // 10 ms at 32 kHz
    int n_mels = 64;
    double f_min = 50.0;     // Hz
    double f_max = 14000.0;  // Hz
    double amin = 1e-10;     // power floor before the log
};

struct KaldiFbankOptions {
    int sample_rate = 16000;        // AST resamples to 16 kHz
    double frame_length_ms = 25.0;  // 400 samples, zero-padded to 512 (round_to_power_of_two)
    double frame_shift_ms = 10.0;   // 160 samples
    int n_mels = 128;
    double low_freq = 20.0;  // Kaldi default
    double high_freq = 0.0;  // <= 0: offset from Nyquist (Kaldi convention)
    double preemphasis = 0.97;
    bool remove_dc_offset = true;
    bool subtract_waveform_mean = true;  // AST: waveform − waveform.mean() before fbank
};

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney'): (n_mels × (n_fft/2+1)) row-major.
std::vector<double> slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double f_min, double f_max);
// The n_mels + 2 band edges of those filters in Hz, equally spaced in Slaney mel from f_min to f_max: band m rises
// from point m, peaks at point m + 1 (its centre) and falls to point m + 2.
std::vector<double> slaney_mel_points(int n_mels, double f_min, double f_max);
// Slaney mel scale (librosa hz_to_mel / mel_to_hz with htk=False): linear below 1 kHz, logarithmic above.
double hz_to_mel_slaney(double hz);
double mel_to_hz_slaney(double mel);

// Log-mel in dB of a mono waveform at options.sample_rate: frames = 1 + n / hop (center = true).
Features log_mel(const std::vector<float>& wave, const LogMelOptions& options = {});

// Kaldi fbank of a mono waveform at options.sample_rate: frames = 1 + (n − window) / shift (snip_edges).
// Throws aviary::Error when the waveform is shorter than one window.
Features kaldi_fbank(const std::vector<float>& wave, const KaldiFbankOptions& options = {});

// In-place complex FFT (radix 2, size a power of two), used by both front ends.
void fft_radix2(std::vector<double>& re, std::vector<double>& im);

}  // namespace aviary::audio
