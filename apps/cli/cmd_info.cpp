// `aviary info --model M`: the model's config as one JSON object (DESIGN.md CLI contract); a VisualRWKV file gives its
// RWKV's config plus a "visual" object (CLIP tower and projector).
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
#include "aviary/core/huge_pages.h"
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
    if (const cpu::Bf16GemmRates& r = cpu::bf16_gemm_rates(); r.measured)  // why bf16 took the path it did
        j["engine"]["bf16_gemm_gflops"] = {{"onednn", r.onednn_gflops}, {"blas", r.blas_gflops}};
    j["memory"] = {{"transparent_huge_pages", cpu::transparent_huge_pages_mode()},
                   {"engine_huge_pages", cpu::huge_pages_wanted()}};  // off with AVIARY_HUGE_PAGES=0
    // idle_workers_sleep: started with both pools' idle workers asleep at once (threads.h; fp32 `train` and `research`
    // runs)
    j["threads"] = {{"default", default_thread_count()},
                    {"blas", thread_count()},
                    {"intraop", at::get_num_threads()},
                    {"idle_workers_sleep", thread_pools_sleep_when_idle()}};
    return j;
}

// A VisualRWKV file (the RWKV under "rwkv.", the CLIP tower under "vit.", the projector "proj.weight"): the RWKV's
// config at the top level (the contract keys) and what the file holds besides, under "visual".
bool describe_visual(const TensorList& t, nlohmann::ordered_json& out) {
    TensorList rwkv;
    int64_t vit_tensors = 0, vit_params = 0, vit_layers = 0, vit_width = 0;
    const at::Tensor* proj = nullptr;
    for (const auto& nt : t) {
        if (nt.name.rfind("rwkv.", 0) == 0) {
            rwkv.push_back({nt.name.substr(5), nt.tensor});
        } else if (nt.name.rfind("vit.", 0) == 0) {
            ++vit_tensors;
            vit_params += nt.tensor.numel();
            const std::string key = "encoder.layers.";
            const size_t at = nt.name.find(key);
            if (at != std::string::npos)
                vit_layers = std::max<int64_t>(vit_layers, std::atoll(nt.name.c_str() + at + key.size()) + 1);
            if (nt.name.find("post_layernorm.weight") != std::string::npos) vit_width = nt.tensor.size(0);
        } else if (nt.name == "proj.weight") {
            proj = &nt.tensor;
        }
    }
    if (rwkv.empty()) return false;
    out = nlohmann::ordered_json::parse(infer_config(rwkv).to_json());
    nlohmann::ordered_json v;
    v["format"] = "visualrwkv";
    v["clip_tensors"] = vit_tensors;
    v["clip_params"] = vit_params;
    v["clip_layers"] = vit_layers;
    v["clip_width"] = vit_width;
    if (proj) v["proj_shape"] = {proj->size(0), proj->size(1)};
    out["visual"] = v;
    return true;
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
            const TensorList t = read_checkpoint(a->model);
            nlohmann::ordered_json visual;
            if (describe_visual(t, visual)) {
                std::printf("%s\n", visual.dump().c_str());
                return 0;
            }
            const ModelConfig c = infer_config(t);
            std::printf("%s\n", c.to_json().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
