// Plot helpers (plot_data.h).
#include "plot_data.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace aviary::studio {

AxisRange data_range(const std::vector<double>& values, double pad_fraction, bool log_scale) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : values) {
        if (!std::isfinite(v) || (log_scale && v <= 0)) continue;
        const double u = log_scale ? std::log10(v) : v;
        lo = std::min(lo, u), hi = std::max(hi, u);
    }
    if (!(lo <= hi)) return {0, 1};
    if (hi == lo)
        return log_scale ? AxisRange{lo - std::log10(2.0), hi + std::log10(2.0)} : AxisRange{lo - 0.5, hi + 0.5};
    const double pad = (hi - lo) * pad_fraction;
    return {lo - pad, hi + pad};
}

double nice_step(double span, int max_ticks) {
    if (!(span > 0) || !std::isfinite(span)) return 1;
    max_ticks = std::max(1, max_ticks);
    const double raw = span / max_ticks;
    double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (;;) {
        for (double m : {1.0, 2.0, 5.0})
            if (m * p >= raw * (1 - 1e-12)) return m * p;
        p *= 10;
    }
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
    std::vector<double> ticks;
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return ticks;
    const double step = nice_step(hi - lo, max_ticks);
    const double slack = (hi - lo) * 1e-9;
    for (double k = std::ceil((lo - slack) / step); k * step <= hi + slack; k += 1) {
        double v = k * step;
        if (std::fabs(v) < step * 1e-9) v = 0;  // no "-0" or 1e-17 labels
        ticks.push_back(v);
    }
    return ticks;
}

void min_max_columns(const float* samples, size_t n, int n_columns, std::vector<float>& mins,
                     std::vector<float>& maxs) {
    mins.assign(std::max(0, n_columns), 0.f);
    maxs.assign(std::max(0, n_columns), 0.f);
    if (n == 0 || n_columns <= 0) return;
    for (int c = 0; c < n_columns; ++c) {
        size_t a = size_t(double(n) * c / n_columns), b = size_t(double(n) * (c + 1) / n_columns);
        a = std::min(a, n - 1);
        b = std::max(std::min(b, n), a + 1);
        const auto mm = std::minmax_element(samples + a, samples + b);
        mins[c] = *mm.first, maxs[c] = *mm.second;
    }
}

int64_t nearest_index(const std::vector<double>& xs, double x) {
    if (xs.empty()) return -1;
    const auto it = std::lower_bound(xs.begin(), xs.end(), x);
    if (it == xs.begin()) return 0;
    if (it == xs.end()) return int64_t(xs.size()) - 1;
    const int64_t i = it - xs.begin();
    return (x - xs[i - 1] <= xs[i] - x) ? i - 1 : i;
}

}  // namespace aviary::studio
