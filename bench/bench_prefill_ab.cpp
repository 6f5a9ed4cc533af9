// aviary-bench-prefill-ab: CPU engine prefill settings compared prompt by prompt in one process (ab_rounds.h: rounds
// in rotated order, paired ratios), one engine per variant on one model, so that a shared VM's drift falls on every
// variant alike. Each round prefills the same prompt (seeded random ids) from a fresh state with every variant.
// Usage: aviary-bench-prefill-ab [--shape 0.1b] [--version 6] [--dtype int8] [--threads 2] [--tokens 512]
//                                [--rounds 12] VARIANT VARIANT...
//   VARIANT: "default" or comma-separated KEY=VALUE: chunk=N (CpuEngineOptions::prefill_chunk), kernels=SET (the
//   element-wise loops' and short-K tiles' instruction set: CpuEngineOptions::kernels), gemm=auto|onednn|
//   blas|libtorch (CpuEngineOptions::prefill_gemm), blocks=N ($AVIARY_GEMM_BLOCKS: weight-row blocks per thread),
//   lora=onednn|blas ($AVIARY_LORA_GEMM: the fp32 LoRA products' path); e.g. "chunk=128,gemm=blas".
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ab_rounds.h"
#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/model.h"
#include "aviary/core/model_shapes.h"

namespace {

int usage(const std::string& why) {
    std::fprintf(stderr,
                 "error: %s (usage: aviary-bench-prefill-ab [--shape 0.1b|0.4b|1.5b|3b|7b] [--version 5|6] "
                 "[--dtype fp32|bf16|int8] [--threads N] [--tokens N] [--rounds N] VARIANT VARIANT...; VARIANT: "
                 "default, or KEY=VALUE[,KEY=VALUE] with KEY chunk, kernels, gemm, blocks or lora)\n",
                 why.c_str());
    return 2;
}

// A variant's settings: engine options, and the environment its engine is built under.
struct Variant {
    aviary::CpuEngineOptions options;
    std::map<std::string, std::string> env;
};

// Parses "default" or "k=v,k=v"; returns an error text, empty when valid.
std::string parse_variant(const std::string& text, Variant& v) {
    if (text == "default") return "";
    size_t at = 0;
    while (at <= text.size()) {
        const size_t end = std::min(text.find(',', at), text.size());
        const std::string kv = text.substr(at, end - at);
        const size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
            return "variant '" + text + "': expected KEY=VALUE, got '" + kv + "'";
        const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "chunk") {
            char* rest = nullptr;
            const long long n = std::strtoll(value.c_str(), &rest, 10);
            if (*rest || n < 1) return "variant '" + text + "': chunk must be a positive integer, got '" + value + "'";
            v.options.prefill_chunk = n;
        } else if (key == "kernels") {
            v.options.kernels = value;  // checked by the engine
        } else if (key == "gemm") {
            v.options.prefill_gemm = value;  // checked by the engine
        } else if (key == "blocks") {
            if (std::atoi(value.c_str()) < 1)
                return "variant '" + text + "': blocks must be a positive integer, got '" + value + "'";
            v.env["AVIARY_GEMM_BLOCKS"] = value;
        } else if (key == "lora") {
            if (value != "onednn" && value != "blas")
                return "variant '" + text + "': lora must be onednn or blas, got '" + value + "'";
            v.env["AVIARY_LORA_GEMM"] = value;
        } else {
            return "variant '" + text + "': unknown key '" + key + "' (expected chunk, kernels, gemm, blocks or lora)";
        }
        at = end + 1;
    }
    return "";
}

// Sets the variables for the lifetime of the object, then restores them.
struct ScopedEnv {
    std::map<std::string, std::pair<bool, std::string>> saved;
    explicit ScopedEnv(const std::map<std::string, std::string>& env) {
        for (const auto& [k, v] : env) {
            const char* before = std::getenv(k.c_str());
            saved[k] = {before != nullptr, before ? before : ""};
            setenv(k.c_str(), v.c_str(), 1);
        }
    }
    ~ScopedEnv() {
        for (const auto& [k, v] : saved) v.first ? setenv(k.c_str(), v.second.c_str(), 1) : unsetenv(k.c_str());
    }
};

}  // namespace

int main(int argc, char** argv) {
    aviary::bench::ModelArgs m;
    int rounds = 12;
    int64_t tokens = 512;
    std::vector<std::string> names;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (aviary::bench::parse_model_arg(i, argc, argv, m)) continue;
        if (a == "--tokens" && has_value)
            tokens = std::atoll(argv[++i]);
        else if (a == "--rounds" && has_value)
            rounds = std::atoi(argv[++i]);
        else if (!a.empty() && a[0] == '-')
            return usage("unknown option or missing value: " + a);
        else
            names.push_back(a);
    }
    const std::string &shape = m.shape, &dtype = m.dtype;
    const int version = m.version, threads = m.threads;
    if (names.size() < 2) return usage("give at least two variants");
    if (dtype != "fp32" && dtype != "bf16" && dtype != "int8") return usage("--dtype must be fp32, bf16 or int8");
    if (threads < 1 || rounds < 3 || tokens < 1) return usage("--threads and --tokens must be >= 1 and --rounds >= 3");
    std::vector<Variant> variants(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
        const std::string why = parse_variant(names[i], variants[i]);
        if (!why.empty()) return usage(why);
        variants[i].options.dtype = dtype;
        variants[i].options.threads = threads;
    }
    try {
        aviary::ModelOptions opt;
        opt.dtype = dtype == "bf16" ? "bf16" : "fp32";  // int8: the engine quantises the fp32 model
        const aviary::ModelConfig config = aviary::named_shape(shape, version);
        // bf16 values in every tensor, as an official bf16 checkpoint holds them
        aviary::TensorList weights = aviary::random_weights(config, 1);
        if (dtype != "fp32") aviary::round_to_bf16_values(weights);
        const aviary::Model model = aviary::Model::from_tensors(weights, opt);
        weights.clear();
        std::vector<std::unique_ptr<aviary::CpuEngine>> engines;
        for (size_t i = 0; i < names.size(); ++i) {
            const ScopedEnv env(variants[i].env);
            engines.push_back(std::make_unique<aviary::CpuEngine>(model, variants[i].options));
            std::fprintf(stderr, "variant %s: prefill GEMM %s\n", names[i].c_str(),
                         engines.back()->prefill_gemm_name().c_str());
        }
        std::fprintf(stderr, "prefill A/B: shape %s, RWKV-%d, %s, %d threads, %lld tokens, %d rounds, CPU %s\n",
                     shape.c_str(), version, dtype.c_str(), threads, static_cast<long long>(tokens), rounds,
                     aviary::cpu_info().model.c_str());
        const at::Tensor prompt =
            at::randint(config.vocab_size, {1, tokens}, at::TensorOptions().dtype(at::kLong).device(at::kCPU));
        auto once = [&](size_t s) {
            aviary::State state = model.new_state(1);
            const auto t0 = std::chrono::steady_clock::now();
            engines[s]->prefill(prompt, state);
            return aviary::bench::seconds_since(t0);
        };
        for (size_t s = 0; s < names.size(); ++s) once(s);  // warm-up: buffers, primitives, the pool
        aviary::bench::print_table(names, aviary::bench::alternate(names.size(), rounds, once), double(tokens),
                                   "tok/s");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
