// Loss by position (the paper's long-context and music figures): the mean next-token loss at each sequence
// position over many sequences, evaluated in sequence mode in segments that carry the recurrent state, so the
// positions may run far beyond the context the model was trained on; plus the Gaussian smoothing of the curves.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace aviary {

class Model;

struct PositionLoss {
    std::vector<double> mean;    // (max position) average loss of predicting token t+1 from tokens ≤ t
    std::vector<int64_t> count;  // sequences contributing at each position
    double mean_loss = 0;        // average over all predicted tokens
    int64_t tunes = 0;           // sequences evaluated (those with at least two tokens)
};

// Sequences are cut at max_len tokens; each is run in segments of `segment` tokens (state carried between them).
// on_progress(done, total) returning false cancels (aviary::Error "cancelled").
PositionLoss loss_by_position(Model& model, const std::vector<std::vector<int32_t>>& sequences, int64_t max_len,
                              const std::function<bool(int64_t, int64_t)>& on_progress = {}, int64_t segment = 4096);

// Gaussian smoothing with standard deviation sigma (in positions); sigma <= 0 returns the input. The window is
// renormalised at the edges.
std::vector<double> gaussian_smooth(const std::vector<double>& values, double sigma);

}  // namespace aviary
