// Front-end parity (audio/src/log_mel.cpp, kaldi_fbank.cpp, fft.cpp): the Kaldi fbank against
// torchaudio.compliance.kaldi.fbank and the log-mel against a float64 numpy reference whose Slaney filters follow
// librosa's formula and were cross-checked against torchaudio.functional.melscale_fbanks(norm='slaney',
// mel_scale='slaney') in tools/make_audio_fixtures.py. Tolerance: max |a − b| ≤ 1e-4 (absolute, on log values).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "aviary/audio/front_end.h"
#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "common/compare.h"

namespace aviary::audio {
namespace {

at::Tensor get(const TensorList& t, const std::string& name) {
    const at::Tensor* p = find_tensor(t, name);
    EXPECT_NE(p, nullptr) << name;
    return p ? *p : at::Tensor();
}
std::vector<float> to_vec(const at::Tensor& t) {
    at::Tensor c = t.to(at::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
at::Tensor features_tensor(const Features& f) {
    return at::from_blob(const_cast<float*>(f.data.data()), {f.frames, f.bins}, at::kFloat).to(at::kDouble);
}
::testing::AssertionResult abs_close(const at::Tensor& a, const at::Tensor& b, double tol) {
    if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
    at::Tensor d = (a.to(at::kDouble) - b.to(at::kDouble)).abs().flatten();
    const int64_t worst = d.argmax().item<int64_t>();
    const double err = d[worst].item<double>();
    auto msg = ::testing::Message() << "max|a-b| = " << err << " (tol " << tol << ") at flat index " << worst
                                    << ": actual " << a.flatten()[worst].item<double>() << " expected "
                                    << b.flatten()[worst].item<double>();
    if (err <= tol) return ::testing::AssertionSuccess() << msg;
    return ::testing::AssertionFailure() << msg;
}

TEST(KaldiFbank, MatchesTorchaudio) {
    TensorList fx = read_safetensors(test::fixture("audio/fbank.safetensors"));
    Features f = kaldi_fbank(to_vec(get(fx, "wave")));  // defaults = AST settings
    at::Tensor expected = get(fx, "fbank");
    ASSERT_EQ(f.frames, expected.size(0));
    ASSERT_EQ(f.bins, 128);
    EXPECT_TRUE(abs_close(features_tensor(f), expected, 1e-4));
}

TEST(KaldiFbank, TooShortIsAnError) {
    try {
        kaldi_fbank(std::vector<float>(100, 0.1f));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("fewer than one 400-sample window"), std::string::npos) << e.what();
    }
}

TEST(LogMel, SlaneyFiltersMatchReference) {
    TensorList fx = read_safetensors(test::fixture("audio/logmel.safetensors"));
    std::vector<double> fb = slaney_mel_filterbank(32000, 1024, 64, 50.0, 14000.0);
    at::Tensor mine = at::from_blob(fb.data(), {64, 513}, at::kDouble).clone();
    EXPECT_TRUE(test::rel_close(mine, get(fx, "filters"), 1e-9));
}

TEST(LogMel, MatchesNumpyReference) {
    TensorList fx = read_safetensors(test::fixture("audio/logmel.safetensors"));
    Features f = log_mel(to_vec(get(fx, "wave")));  // defaults = PANNs/HTS-AT
    at::Tensor expected = get(fx, "logmel");
    ASSERT_EQ(f.frames, 1 + 16000 / 320);
    EXPECT_TRUE(abs_close(features_tensor(f), expected, 1e-4));
}

TEST(Fft, MatchesDirectDft) {
    const int n = 64;
    std::vector<double> re(n), im(n, 0.0);
    for (int i = 0; i < n; ++i) re[size_t(i)] = std::sin(0.3 * i) + 0.1 * (i % 7);
    const std::vector<double> x = re;
    fft_radix2(re, im);
    double worst = 0;
    for (int k = 0; k < n; ++k) {
        double sr = 0, si = 0;
        for (int t = 0; t < n; ++t) {
            sr += x[size_t(t)] * std::cos(-2 * M_PI * k * t / n);
            si += x[size_t(t)] * std::sin(-2 * M_PI * k * t / n);
        }
        worst = std::max({worst, std::abs(sr - re[size_t(k)]), std::abs(si - im[size_t(k)])});
    }
    EXPECT_LT(worst, 1e-10);
}

}  // namespace
}  // namespace aviary::audio
