// Learning-rate schedule of the official trainer (spec §7.5; LM src/trainer.py
// @86affd7, `my_exit_tokens` cosine branch and the warm-up factor), by
// optimizer steps instead of tokens (equal for a fixed batch).
#include <algorithm>
#include <cmath>

#include "aviary/core/trainer.h"

namespace aviary {

double learning_rate(const TrainOptions& o, int64_t step) {
    // p = progress after warm-up, clamped to [0, 1]
    const double span = double(std::max<int64_t>(1, o.steps - o.warmup));
    const double p = std::clamp(double(step - o.warmup) / span, 0.0, 1.0);
    // lr = lr_init·[(0.5 + f/2) + (0.5 − f/2)·cos(π·p)], f = lr_final / lr_init
    const double f = o.lr_final / o.lr;
    double lr = o.lr * ((0.5 + f / 2) + (0.5 - f / 2) * std::cos(M_PI * p));
    // warm-up: lr ×= 0.2 + 0.8·step/warmup while step < warmup
    if (step < o.warmup) lr *= 0.2 + 0.8 * double(step) / double(o.warmup);
    return lr;
}

}  // namespace aviary
