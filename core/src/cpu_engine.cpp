// The CPU decode engine (cpu_engine.h): the RNN step of spec §2.7 for x052 (§2.3) and x060 (§2.4), WKV recurrence
// §2.5.1, channel mix §2.6, fp32 placement §2.8. Same formulas as Model::step (model.cpp), which is its test oracle;
// the structure (one pass per layer over preallocated buffers, matrix-vector products split by rows over a thread
// pool, element-wise work fused into the products' epilogues or into one loop per stage) follows rwkv.cpp's RNN
// graph and the official single-file demos (CR RWKV_v5_demo.py / RWKV_v6_demo.py), not their code.
// This file: construction (weights, kernel set, pool, thread count by measurement) and accessors; the parts live in
// cpu_engine_weights.cpp, cpu_engine_step.cpp, cpu_engine_prefill.cpp, cpu_engine_probe.cpp, cpu_engine_head.cpp and
// cpu_engine_cache.cpp (the shared engine per model), over the state in cpu_engine_impl.h.
#include "aviary/core/cpu_engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "cpu_engine_impl.h"

namespace aviary {

void CpuEngine::Impl::choose_threads(int max_threads) {
    if (max_threads <= 1) return;
    resize(1);
    std::vector<float> out(head.rows);
    double best_time = 1e30;
    int best = 1;
    for (int n = 1; n <= max_threads; ++n) {
        pool = std::make_unique<cpu::ThreadPool>(n);
        double t_min = 1e30;
        for (int rep = 0; rep < 4; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            run({{&head, a.data(), cfg.n_embd, out.data(), head.rows}});
            const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (rep > 0) t_min = std::min(t_min, t);  // rep 0 warms the caches and the threads
        }
        if (t_min < best_time * 0.95) {  // more threads must win clearly
            best_time = t_min;
            best = n;
        }
    }
    if (pool->size() != best) pool = std::make_unique<cpu::ThreadPool>(best);
}

void CpuEngine::Impl::select_kernels(const std::string& name) {
    kernels = name == "auto" ? &cpu::kernels_best() : &cpu::kernels_named(name);
    head_step = head_step_for(kernels->name);
    short_k_tile = cpu::short_k_tile_for(kernels->name);
}

CpuEngine::CpuEngine(const Model& model, const CpuEngineOptions& options) : impl_(std::make_unique<Impl>()) {
    std::string why;
    AVIARY_CHECK(supports(model, &why), "CpuEngine: ", why);
    Impl& m = *impl_;
    m.cfg = model.config();
    m.dtype = options.dtype == "auto" ? model.options().dtype : options.dtype;
    AVIARY_CHECK(m.dtype == "fp32" || m.dtype == "bf16" || m.dtype == "int8", "CpuEngine: unknown weight dtype '",
                 options.dtype, "' (expected auto, fp32, bf16 or int8)");
    m.select_kernels(options.kernels);
    m.pool = std::make_unique<cpu::ThreadPool>(options.threads > 0 ? options.threads : 1);
    AVIARY_CHECK(options.prefill_chunk >= 1, "CpuEngine: prefill_chunk must be >= 1, got ", options.prefill_chunk);
    m.prefill_chunk = options.prefill_chunk;
    m.choose_gemm_path(options.prefill_gemm);
    m.load(model);
    if (options.threads <= 0) m.choose_threads(thread_count());
}

CpuEngine::~CpuEngine() = default;

bool CpuEngine::supports(const Model& model, std::string* why) {
    auto no = [&](const char* reason) {
        if (why) *why = reason;
        return false;
    };
    if (model.config().version != 5 && model.config().version != 6)
        return no("the engine runs RWKV-5.2 and RWKV-6 models only");
    if (model.options().device != "cpu") return no("the model is not on the CPU");
    if (model.is_training()) return no("the model is in training mode");
    if (model.has_lora()) return no("the model has LoRA adapters (merge them first)");
    return true;
}

const std::string& CpuEngine::dtype() const {
    return impl_->dtype;
}

const char* CpuEngine::kernel_name() const {
    return impl_->kernels->name;
}

void CpuEngine::use_kernels(const std::string& name) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->select_kernels(name);
}

int CpuEngine::threads() const {
    return impl_->pool->size();
}

double CpuEngine::weight_bytes_per_token() const {
    return impl_->bytes_per_token;
}

double CpuEngine::weights_on_huge_pages() const {
    std::vector<cpu::ByteRange> ranges = impl_->arena.chunks();
    double total = double(impl_->arena.bytes_used());
    for (const at::Tensor& t : impl_->keep) {
        const size_t bytes = size_t(t.numel()) * t.element_size();
        ranges.emplace_back(t.data_ptr(), bytes);
        total += double(bytes);
    }
    return total > 0 ? std::min(1.0, double(cpu::huge_page_bytes(ranges)) / total) : 0.0;
}

double CpuEngine::prefill_flops_per_token() const {
    return impl_->prefill_flops_per_token;
}

const ModelConfig& CpuEngine::config() const {
    return impl_->cfg;
}

}  // namespace aviary
