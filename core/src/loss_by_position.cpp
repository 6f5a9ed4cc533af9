// Loss by position (loss_by_position.h): per sequence the cross-entropy of each next token, accumulated per
// position and averaged over the sequences long enough to reach it; sequence mode in state-carrying segments.
#include "aviary/core/loss_by_position.h"

#include <torch/torch.h>

#include <cmath>

#include "aviary/core/error.h"
#include "aviary/core/model.h"

namespace aviary {

PositionLoss loss_by_position(Model& model, const std::vector<std::vector<int32_t>>& sequences, int64_t max_len,
                              const std::function<bool(int64_t, int64_t)>& on_progress, int64_t segment) {
    AVIARY_CHECK(!sequences.empty(), "no sequences to evaluate");
    AVIARY_CHECK(max_len >= 2, "max_len must be at least 2, got ", max_len);
    AVIARY_CHECK(segment >= 1, "segment must be >= 1, got ", segment);
    torch::NoGradGuard no_grad;
    const int64_t V = model.config().vocab_size;
    PositionLoss r;
    std::vector<double> sum;
    double total = 0;
    int64_t total_n = 0;
    for (size_t n = 0; n < sequences.size(); ++n) {
        const auto& seq = sequences[n];
        const int64_t len = std::min<int64_t>(int64_t(seq.size()), max_len);
        if (len < 2) continue;
        for (int64_t i = 0; i < len; ++i)
            AVIARY_CHECK(seq[size_t(i)] >= 0 && seq[size_t(i)] < V, "sequence ", n, " token ", i, " = ", seq[size_t(i)],
                         " is outside the model's vocabulary of ", V);
        if (int64_t(sum.size()) < len - 1) {
            sum.resize(size_t(len - 1), 0.0);
            r.count.resize(size_t(len - 1), 0);
        }
        State state = model.new_state(1);
        for (int64_t t0 = 0; t0 < len - 1; t0 += segment) {
            const int64_t T = std::min(segment, len - 1 - t0);
            auto x = torch::tensor(std::vector<int64_t>(seq.begin() + t0, seq.begin() + t0 + T), torch::kInt64);
            auto y = torch::tensor(std::vector<int64_t>(seq.begin() + t0 + 1, seq.begin() + t0 + T + 1), torch::kInt64);
            // loss_t = −log softmax(logits_t)[y_t]      (1, T, V) -> (T)
            at::Tensor logits = model.forward(x.unsqueeze(0), state, true).to(torch::kCPU, torch::kFloat32).squeeze(0);
            at::Tensor nll =
                (-torch::log_softmax(logits, -1).gather(1, y.unsqueeze(1)).squeeze(1)).to(torch::kFloat64).contiguous();
            const double* p = nll.data_ptr<double>();
            for (int64_t t = 0; t < T; ++t) {
                sum[size_t(t0 + t)] += p[t];
                r.count[size_t(t0 + t)] += 1;
                total += p[t];
            }
            total_n += T;
        }
        ++r.tunes;
        if (on_progress && !on_progress(int64_t(n + 1), int64_t(sequences.size()))) AVIARY_FAIL("cancelled");
    }
    AVIARY_CHECK(r.tunes > 0, "no sequence has at least one token to predict");
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

}  // namespace aviary
