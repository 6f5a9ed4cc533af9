// Paired A/B timing for the bench programs (aviary-bench-decode-ab, aviary-bench-prefill-ab): a shared VM's drift
// moves separate runs by ±20 %, so every variant is timed once per round, in an order that rotates from round to
// round, and what decides is the median over rounds of the paired ratio (time of the first variant / time of the
// other: above 1 the other is faster), with its quartiles.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace aviary::bench {

// The options both A/B programs take: the model shape, weight format and threads.
struct ModelArgs {
    std::string shape = "0.1b", dtype = "int8";
    int version = 6, threads = 2;
};

// Takes argv[i] (and its value, advancing i) when it is one of the ModelArgs options; false otherwise.
inline bool parse_model_arg(int& i, int argc, char** argv, ModelArgs& m) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    if (a == "--shape")
        m.shape = argv[++i];
    else if (a == "--dtype")
        m.dtype = argv[++i];
    else if (a == "--version")
        m.version = std::atoi(argv[++i]);
    else if (a == "--threads")
        m.threads = std::atoi(argv[++i]);
    else
        return false;
    return true;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The q-quantile of v (sorted copy, nearest rank).
inline double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * double(v.size())))];
}

// rounds × names.size() calls of time_one(i) (seconds for variant i), rotated; returns the times per variant.
template <class TimeOne>
std::vector<std::vector<double>> alternate(size_t variants, int rounds, TimeOne&& time_one) {
    std::vector<std::vector<double>> t(variants);
    for (int r = 0; r < rounds; ++r)
        for (size_t k = 0; k < variants; ++k) {
            const size_t s = (k + size_t(r)) % variants;
            t[s].push_back(time_one(s));
        }
    return t;
}

// The markdown table: per variant its mean and median rate (work / seconds) and the paired ratio to the first.
inline void print_table(const std::vector<std::string>& names, const std::vector<std::vector<double>>& t, double work,
                        const char* unit) {
    std::printf("| variant | mean %s | median %s | paired ratio to %s: median (quartiles) |\n|---|---|---|---|\n", unit,
                unit, names[0].c_str());
    for (size_t s = 0; s < names.size(); ++s) {
        double sum = 0;
        for (double x : t[s]) sum += x;
        std::vector<double> ratio(t[s].size());
        for (size_t r = 0; r < ratio.size(); ++r) ratio[r] = t[0][r] / t[s][r];
        std::printf("| %s | %.1f | %.1f | %.3f (%.3f–%.3f) |\n", names[s].c_str(), work * double(t[s].size()) / sum,
                    work / quantile(t[s], 0.5), quantile(ratio, 0.5), quantile(ratio, 0.25), quantile(ratio, 0.75));
    }
}

}  // namespace aviary::bench
