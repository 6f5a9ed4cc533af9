// `aviary info --model M`: the model's config as one JSON object (DESIGN.md CLI contract).
// `aviary info --system`: what this machine runs the matrix work on, as one JSON object: the CPU model and its ISA
// features, the BLAS and the core type it runs (and whether start-up corrected it, blas_core.h), oneDNN's version and
// ISA, the CPU engine's kernel set and prefill GEMM path per weight format, and the thread counts.
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "aviary/core/blas_core.h"
#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"
#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_gemm.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "cli_common.h"

namespace aviary::cli {
namespace {

nlohmann::json system_json(int threads) {
    set_thread_count(threads);
    const CpuInfo& cpu = cpu_info();
    const BlasInfo blas = blas_info();
    const cpu::OneDnnInfo& dnn = cpu::onednn_info();
    nlohmann::json j;
    j["cpu"] = {{"model", cpu.model}, {"features", cpu.feature_names()}, {"native_bf16", cpu.native_bf16()}};
    j["blas"] = {{"library", blas.library},
                 {"config", blas.config},
                 {"core", blas.core},
                 {"core_for_this_cpu", blas.wanted},
                 {"how", blas.how}};
    if (dnn.available)
        j["onednn"] = {{"version", dnn.version},
                       {"isa", dnn.isa},
                       {"bf16_units", dnn.bf16_matmul},
                       {"int8_units", dnn.int8_matmul}};
    else
        j["onednn"] = nullptr;
    j["engine"] = {{"decode_kernels", cpu::kernels_best().name},
                   {"prefill_gemm",
                    {{"fp32", prefill_gemm_path("fp32")},
                     {"bf16", prefill_gemm_path("bf16")},
                     {"int8", prefill_gemm_path("int8")}}}};
    j["threads"] = {{"default", default_thread_count()}, {"blas", thread_count()}, {"intraop", at::get_num_threads()}};
    return j;
}

}  // namespace

void register_info(CLI::App& app, Runner& run) {
    auto* sub =
        app.add_subcommand("info", "Print a checkpoint's model config, or this machine's compute set-up, as JSON");
    struct Args {
        std::string model;
        bool system = false;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--model,-m", a->model, "Checkpoint (.pth or .safetensors)");
    sub->add_flag("--system", a->system,
                  "This machine: CPU model and ISA features, the BLAS and its core type, oneDNN's ISA, threads");
    sub->add_option("--threads", a->threads, "Threads (default $AVIARY_THREADS or all cores)");
    sub->callback([&run, a] {
        run = [a] {
            if (a->model.empty() == !a->system) throw UsageError("give exactly one of --model or --system");
            if (a->system) {
                std::printf("%s\n", system_json(a->threads).dump(2).c_str());
                return 0;
            }
            const ModelConfig c = infer_config(read_checkpoint(a->model));
            std::printf("%s\n", c.to_json().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
