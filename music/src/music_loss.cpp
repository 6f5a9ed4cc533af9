// Loss by byte position (the paper's music figure): per framed tune (BOS + bytes + EOS) the cross-entropy of
// each next byte, accumulated per position and averaged over the tunes that reach it; plus the Gaussian
// smoothing used to draw the curve.
#include <torch/torch.h>

#include <cmath>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/music/abc.h"
#include "aviary/music/music.h"

namespace aviary::music {

PositionLoss loss_by_position(Model& model, const std::vector<std::string>& tunes_abc, int64_t max_len,
                              const std::function<bool(int64_t, int64_t)>& on_progress) {
    AVIARY_CHECK(!tunes_abc.empty(), "no tunes to evaluate");
    AVIARY_CHECK(max_len >= 2, "max_len must be at least 2, got ", max_len);
    torch::NoGradGuard no_grad;
    PositionLoss r;
    std::vector<double> sum;
    double total = 0;
    int64_t total_n = 0;
    for (size_t n = 0; n < tunes_abc.size(); ++n) {
        std::string framed = tunes_abc[n];
        if (framed.empty() || framed.front() != char(kBos)) framed = frame_tune(framed);
        std::vector<int32_t> ids = encode_abc(framed);
        if (int64_t(ids.size()) > max_len) ids.resize(size_t(max_len));
        if (ids.size() < 2) continue;
        State state = model.new_state(1);
        auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end() - 1), torch::kInt64).unsqueeze(0);
        auto y = torch::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), torch::kInt64);
        // loss_t = -log softmax(logits_t)[y_t]   (B=1, T, V) -> (T)
        at::Tensor logits = model.forward(x, state, true).to(torch::kCPU, torch::kFloat32).squeeze(0);
        at::Tensor nll = -torch::log_softmax(logits, -1).gather(1, y.unsqueeze(1)).squeeze(1);
        nll = nll.to(torch::kFloat64).contiguous();
        const double* p = nll.data_ptr<double>();
        const size_t T = size_t(nll.numel());
        if (sum.size() < T) {
            sum.resize(T, 0.0);
            r.count.resize(T, 0);
        }
        for (size_t t = 0; t < T; ++t) {
            sum[t] += p[t];
            r.count[t] += 1;
            total += p[t];
        }
        total_n += int64_t(T);
        ++r.tunes;
        if (on_progress && !on_progress(int64_t(n + 1), int64_t(tunes_abc.size()))) AVIARY_FAIL("cancelled");
    }
    AVIARY_CHECK(r.tunes > 0, "no tune has at least one byte to predict");
    r.mean.resize(sum.size());
    for (size_t t = 0; t < sum.size(); ++t) r.mean[t] = sum[t] / double(r.count[t]);
    r.mean_loss = total / double(total_n);
    return r;
}

std::vector<double> gaussian_smooth(const std::vector<double>& v, double sigma) {
    if (sigma <= 0 || v.empty()) return v;
    const int64_t radius = int64_t(std::ceil(3 * sigma));
    std::vector<double> w(size_t(2 * radius + 1));
    for (int64_t k = -radius; k <= radius; ++k)
        w[size_t(k + radius)] = std::exp(-0.5 * double(k * k) / (sigma * sigma));
    std::vector<double> out(v.size());
    const int64_t n = int64_t(v.size());
    for (int64_t i = 0; i < n; ++i) {
        double s = 0, ws = 0;
        for (int64_t k = -radius; k <= radius; ++k) {
            const int64_t j = i + k;
            if (j < 0 || j >= n) continue;  // renormalised window at the edges
            s += w[size_t(k + radius)] * v[size_t(j)];
            ws += w[size_t(k + radius)];
        }
        out[size_t(i)] = s / ws;
    }
    return out;
}

}  // namespace aviary::music
