// A plain iterative radix-2 complex FFT (Cooley–Tukey, bit reversal then butterflies) in double precision,
// shared by the log-mel and Kaldi fbank front ends (sizes 1024 and 512).
#include <cmath>

#include "aviary/audio/front_end.h"
#include "aviary/core/error.h"

namespace aviary::audio {

void fft_radix2(std::vector<double>& re, std::vector<double>& im) {
    const size_t n = re.size();
    AVIARY_CHECK(n == im.size() && n >= 1 && (n & (n - 1)) == 0, "fft_radix2: size ", n, " is not a power of two");
    for (size_t i = 1, j = 0; i < n; ++i) {  // bit-reversal permutation
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            std::swap(re[i], re[j]);
            std::swap(im[i], im[j]);
        }
    }
    // twiddles e^{−2πi k/n}, k < n/2, computed once per size (X_k = Σ x_n e^{−2πi kn/N})
    thread_local std::vector<double> tw_re, tw_im;
    if (tw_re.size() != n / 2) {
        tw_re.resize(n / 2);
        tw_im.resize(n / 2);
        for (size_t k = 0; k < n / 2; ++k) {
            tw_re[k] = std::cos(-2.0 * M_PI * double(k) / double(n));
            tw_im[k] = std::sin(-2.0 * M_PI * double(k) / double(n));
        }
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        const size_t stride = n / len;  // e^{−2πi k/len} = twiddle[k·n/len]
        for (size_t i = 0; i < n; i += len) {
            for (size_t k = 0; k < len / 2; ++k) {
                const double wr = tw_re[k * stride], wi = tw_im[k * stride];
                const size_t a = i + k, b = i + k + len / 2;
                const double tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

}  // namespace aviary::audio
