// aviary-bench-decode-ab: CPU decode kernel sets compared step by step on one engine (CpuEngine::use_kernels), so that
// a shared VM's drift, which moves separate runs by ±20 %, falls on every set alike. Each round times one decode step
// of every set (batch 1, greedy, the same weights in the caches), in an order that rotates from round to round; the
// figure that decides is the median over rounds of the paired ratio (step time of the first set / step time of the
// other: above 1 the other set is faster), with its quartiles.
// Usage: aviary-bench-decode-ab [--shape 0.1b] [--version 6] [--dtype int8] [--threads 2] [--steps 400] SET SET...
//   SET: a kernel set name (scalar, avx2, avx512, avx512vnni, auto), at least two; NAME@4k runs that set on a second
//   engine (and model) built with AVIARY_HUGE_PAGES=0, its weights on 4 KiB pages (huge_pages.h); NAME@bf16file on
//   an engine of the same weights rounded to bf16 values, as a bf16 checkpoint loads (a bf16 / int8 engine then
//   reads its LoRAs in bf16: cpu_engine_weights.cpp).
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/model.h"
#include "aviary/core/model_shapes.h"
#include "ab_rounds.h"

namespace {

int usage(const char* why) {
    std::fprintf(stderr,
                 "error: %s (usage: aviary-bench-decode-ab [--shape 0.1b|0.4b|1.5b|3b|7b] [--version 5|6] "
                 "[--dtype fp32|bf16|int8] [--threads N] [--steps N] SET[@4k|@bf16file] SET[@4k|@bf16file]...)\n",
                 why);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    aviary::bench::ModelArgs m;
    int steps = 400;
    std::vector<std::string> sets;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (aviary::bench::parse_model_arg(i, argc, argv, m)) continue;
        if (a == "--steps" && i + 1 < argc)
            steps = std::atoi(argv[++i]);
        else if (!a.empty() && a[0] == '-')
            return usage(("unknown option or missing value: " + a).c_str());
        else
            sets.push_back(a);
    }
    const std::string &shape = m.shape, &dtype = m.dtype;
    const int version = m.version, threads = m.threads;
    if (sets.size() < 2) return usage("give at least two kernel sets");
    if (dtype != "fp32" && dtype != "bf16" && dtype != "int8") return usage("--dtype must be fp32, bf16 or int8");
    if (threads < 1 || steps < 10) return usage("--threads must be >= 1 and --steps >= 10");
    try {
        aviary::ModelOptions opt;
        opt.dtype = dtype == "bf16" ? "bf16" : "fp32";  // int8: the engine quantises the fp32 model
        const aviary::ModelConfig config = aviary::named_shape(shape, version);
        aviary::CpuEngineOptions eo;
        eo.dtype = dtype;
        eo.threads = threads;
        // [0]: weights on huge pages where the kernel gives them (the default); [1]: on 4 KiB pages; [2]: every
        // tensor rounded to bf16 values; [1] and [2] only if asked. Each engine has its own model: an fp32 or bf16
        // engine reads its model's tensors in place.
        const char* variant[3] = {"(default)", "@4k", "@bf16file"};
        std::unique_ptr<aviary::Model> models[3];
        std::unique_ptr<aviary::CpuEngine> engines[3];
        std::vector<std::string> kernel(sets.size());
        std::vector<int> which(sets.size());
        for (size_t i = 0; i < sets.size(); ++i) {
            const size_t at = sets[i].find('@');
            kernel[i] = sets[i].substr(0, at);
            const std::string pages = at == std::string::npos ? "" : sets[i].substr(at + 1);
            if (!pages.empty() && pages != "4k" && pages != "bf16file")
                return usage(("unknown engine variant in " + sets[i] + " (expected @4k or @bf16file)").c_str());
            which[i] = pages == "4k" ? 1 : pages == "bf16file" ? 2 : 0;
        }
        for (int w : {0, 1, 2}) {
            if (std::find(which.begin(), which.end(), w) == which.end()) continue;
            const char* before = std::getenv("AVIARY_HUGE_PAGES");
            const std::string saved = before ? before : "";
            if (w == 1) setenv("AVIARY_HUGE_PAGES", "0", 1);
            aviary::TensorList weights = aviary::random_weights(config, 1);
            if (w == 2) aviary::round_to_bf16_values(weights);
            models[w] = std::make_unique<aviary::Model>(aviary::Model::from_tensors(weights, opt));
            engines[w] = std::make_unique<aviary::CpuEngine>(*models[w], eo);
            if (before)
                setenv("AVIARY_HUGE_PAGES", saved.c_str(), 1);
            else
                unsetenv("AVIARY_HUGE_PAGES");
            std::fprintf(stderr, "engine %s: %.0f %% of its weights on 2 MiB pages, %.1f MB read per token\n",
                         variant[w], 100 * engines[w]->weights_on_huge_pages(),
                         engines[w]->weight_bytes_per_token() / 1e6);
        }
        for (size_t i = 0; i < sets.size(); ++i)  // every name valid on this CPU before timing
            engines[which[i]]->use_kernels(kernel[i]);
        std::fprintf(stderr, "decode A/B: shape %s, RWKV-%d, %s, %d threads, %d rounds, CPU %s\n", shape.c_str(),
                     version, dtype.c_str(), threads, steps, aviary::cpu_info().model.c_str());
        aviary::State state = models[which[0]]->new_state(1);
        at::Tensor tok = at::ones({1}, at::kLong);
        auto step = [&](size_t s) {
            aviary::CpuEngine& engine = *engines[which[s]];
            engine.use_kernels(kernel[s]);
            const auto t0 = std::chrono::steady_clock::now();
            tok = engine.step(tok, state).argmax(-1);
            return aviary::bench::seconds_since(t0);
        };
        for (size_t s = 0; s < sets.size(); ++s)  // warm-up: the pool, the caches, each set's code
            for (int i = 0; i < 3; ++i) step(s);
        aviary::bench::print_table(sets, aviary::bench::alternate(sets.size(), steps, step), 1.0, "tok/s");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
