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
    // One real step of a zero state records the jobs a step runs (the same matrices together, in order); they are
    // replayed without epilogues, so only the products' reads and writes are timed.
    State state;
    for (int l = 0; l < cfg.n_layer; ++l) {
        state.att_shift.push_back(at::zeros({1, cfg.n_embd}, at::kFloat));
        state.wkv.push_back(at::zeros({1, cfg.n_head, cfg.head_size, cfg.head_size}, at::kFloat));
        state.ffn_shift.push_back(at::zeros({1, cfg.n_embd}, at::kFloat));
    }
    std::vector<std::vector<Task>> jobs;
    std::vector<float> logits(static_cast<size_t>(cfg.vocab_size));
    const int64_t token = 0;
    recorded = &jobs;
    try {
        step(&token, 1, state, logits.data());
    } catch (...) {
        recorded = nullptr;
        throw;
    }
    recorded = nullptr;
    for (auto& job : jobs)
        for (Task& t : job) t.epilogue = Epilogue::kStore;
    double best = 1e30;
    for (int rep = 0; rep < 9; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& job : jobs) run(job);
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
