// Plot helpers for the ImDrawList plots (loss/LR, waveform, colour bar): axis ranges with padding and a
// log option, "nice" tick positions (1, 2, 5 × 10^k steps, Heckbert's Graphics Gems labelling idea), and
// min/max per pixel column for waveforms (style_anchors §4.4, §4.6). No GL here; tested on its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace aviary::studio {

struct AxisRange {
    double lo = 0, hi = 1;
};

// Range of the finite values (positive ones only when log_scale), widened by pad_fraction of the span on
// each side; a single value v gives [v - 0.5, v + 0.5] (log: [v/2, 2v]); no usable value gives [0, 1].
// With log_scale the result is in log10 units.
AxisRange data_range(const std::vector<double>& values, double pad_fraction, bool log_scale);

// The step 1, 2 or 5 × 10^k (the smallest of them ≥ span / max_ticks).
double nice_step(double span, int max_ticks);
// Multiples of nice_step(hi - lo, max_ticks) inside [lo, hi] (inclusive, with a 1e-9 relative slack).
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);

// Waveform columns: for each of n_columns equal slices of samples, its min and max (an empty slice takes
// the sample at its position). Output (n_columns) each.
void min_max_columns(const float* samples, size_t n, int n_columns, std::vector<float>& mins, std::vector<float>& maxs);

// Index of the point whose x is nearest to x (xs sorted ascending); -1 when xs is empty.
int64_t nearest_index(const std::vector<double>& xs, double x);

}  // namespace aviary::studio
