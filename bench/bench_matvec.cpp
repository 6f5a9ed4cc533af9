// aviary-bench-matvec: the CPU engine's matrix-vector kernels (cpu_engine_kernels.h) on one thread, per kernel set
// and weight format, for batch 1 and 8: GB/s of weights read and G weights/s, on a matrix larger than the caches
// (memory-bound: what decode sees) and on one that fits in L2 (compute-bound: the kernel's own ceiling).
// Usage: aviary-bench-matvec [cols (768)] [reps (5)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "aviary/core/cpu_engine_kernels.h"

using namespace aviary::cpu;

namespace {

double best_seconds(int reps, int inner, const KernelSet& ks, const MatView& m, const std::vector<float>& x,
                    int64_t batch, std::vector<float>& y) {
    double best = 1e30;
    for (int rep = 0; rep < reps; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) ks.matvec(m, x.data(), m.cols, batch, y.data(), m.rows, 0, m.rows);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / inner);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int64_t cols = argc > 1 ? std::atoll(argv[1]) : 768;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
    if (cols < 1 || reps < 1) {
        std::fprintf(stderr, "error: usage: aviary-bench-matvec [cols >= 1] [reps >= 1]\n");
        return 2;
    }
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    const std::vector<const KernelSet*> sets = kernels_available();
    std::printf("matvec, %lld columns, 1 thread, best of %d\n", static_cast<long long>(cols), reps);
    std::printf("%-10s %-5s %-6s %-14s %10s %14s\n", "set", "dtype", "batch", "matrix", "GB/s", "G weights/s");
    for (const bool resident : {false, true}) {
        const int64_t bytes_target = resident ? 400'000 : 160'000'000;  // ~L2-resident vs well beyond the caches
        for (const WeightType type : {WeightType::F32, WeightType::BF16, WeightType::I8}) {
            const int64_t eb = type == WeightType::F32 ? 4 : type == WeightType::BF16 ? 2 : 1;
            const int64_t rows = std::max<int64_t>(4, bytes_target / eb / cols / 4 * 4);
            std::vector<float> w(static_cast<size_t>(rows * cols));
            for (auto& v : w) v = normal(rng);
            std::vector<uint16_t> wb;
            std::vector<int8_t> wq;
            std::vector<float> scale(static_cast<size_t>(rows));
            MatView m;
            m.type = type;
            m.rows = rows;
            m.cols = cols;
            if (type == WeightType::F32) {
                m.data = w.data();
            } else if (type == WeightType::BF16) {
                wb.resize(w.size());
                for (size_t i = 0; i < w.size(); ++i) wb[i] = fp32_to_bf16(w[i]);
                m.data = wb.data();
            } else {
                wq.resize(w.size());
                quantize_rows_int8(w.data(), rows, cols, wq.data(), scale.data());
                m.data = wq.data();
                m.scale = scale.data();
            }
            if (type != WeightType::F32) std::vector<float>().swap(w);
            for (const int64_t batch : {int64_t(1), int64_t(8)}) {
                std::vector<float> x(static_cast<size_t>(batch * cols)), y(static_cast<size_t>(batch * rows));
                for (auto& v : x) v = normal(rng);
                const int inner = resident ? 200 : 1;
                for (const KernelSet* ks : sets) {
                    const double s = best_seconds(reps, inner, *ks, m, x, batch, y);
                    std::printf("%-10s %-5s %-6lld %-14s %10.1f %14.2f\n", ks->name,
                                type == WeightType::F32    ? "fp32"
                                : type == WeightType::BF16 ? "bf16"
                                                           : "int8",
                                static_cast<long long>(batch), resident ? "L2-resident" : "160 MB",
                                rows * cols * eb / s / 1e9, rows * cols / s / 1e9);
                }
            }
        }
    }
    return 0;
}
