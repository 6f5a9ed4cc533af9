// The CPU engine's weight-read probe (cpu_engine.h measure_weight_read_gbps): a decode step's matrix reads alone, for
// the decode floor of `aviary bench`.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "cpu_engine_impl.h"

namespace aviary {

double CpuEngine::Impl::measure_weight_read_gbps() {
    resize(1);
    // the jobs of a step (layer()): the same matrices run together
    std::vector<std::vector<const MatView*>> jobs;
    for (const Layer& L : layers) {
        if (cfg.version == 6) {
            jobs.push_back({&L.maa_w1t});
            jobs.push_back({&L.maa_w2t[0], &L.maa_w2t[1], &L.maa_w2t[2], &L.maa_w2t[3], &L.maa_w2t[4]});
            jobs.push_back({&L.decay_w1t});
            jobs.push_back({&L.decay_w2t});
        }
        jobs.push_back({&L.att_r, &L.att_k, &L.att_v, &L.att_g});
        jobs.push_back({&L.att_o});
        jobs.push_back({&L.ffn_k, &L.ffn_r});
        jobs.push_back({&L.ffn_v});
    }
    jobs.push_back({&head});
    int64_t widest = 0, total_rows = 0;
    for (const auto& job : jobs) {
        int64_t rows = 0;
        for (const MatView* w : job) {
            widest = std::max(widest, w->cols);
            rows += w->rows;
        }
        total_rows = std::max(total_rows, rows);
    }
    std::vector<float> x(static_cast<size_t>(widest), 0.5f), y(static_cast<size_t>(total_rows));
    std::vector<Task> tasks;
    double best = 1e30;
    for (int rep = 0; rep < 9; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& job : jobs) {
            tasks.clear();
            int64_t off = 0;
            for (const MatView* w : job) {
                tasks.push_back({w, x.data(), w->cols, y.data() + off, w->rows});
                off += w->rows;
            }
            run(tasks);
        }
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (rep > 0) best = std::min(best, t);
    }
    return bytes_per_token / best / 1e9;
}

double CpuEngine::measure_weight_read_gbps() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->measure_weight_read_gbps();
}

}  // namespace aviary
