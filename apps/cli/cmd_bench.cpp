// `aviary bench (--model M | --shape 0.1b|0.4b|1.5b|3b [--version 5|6]) [--dtype …] [--threads N] [--json]`:
// prefill tokens/s (prompt of 512), decode tokens/s (batch 1 and 8), and the memory-bandwidth floor of
// decode: measured read bandwidth ÷ weight bytes read per token (every matrix once, one embedding row).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "aviary/core/error.h"
#include "aviary/core/model_shapes.h"
#include "aviary/core/threads.h"
#include "cli_common.h"

namespace aviary::cli {
namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Read bandwidth in GB/s: best of several sums over a 512 MiB buffer (LibTorch's vectorised, threaded sum).
double measure_read_gbps() {
    at::Tensor buf = at::ones({128LL << 20}, at::kFloat);  // 512 MiB
    double best = 0;
    for (int i = 0; i < 5; ++i) {
        const double t0 = now_s();
        volatile float s = buf.sum().item<float>();
        (void)s;
        best = std::max(best, buf.numel() * 4.0 / (now_s() - t0) / 1e9);
    }
    return best;
}

// Bytes of weights one decode step reads: all parameters except the embedding table, plus one row of it.
double decode_bytes_per_token(const TensorList& sd) {
    double bytes = 0;
    for (const auto& nt : sd) {
        if (nt.name == "emb.weight")
            bytes += nt.tensor.size(1) * nt.tensor.element_size();
        else
            bytes += nt.tensor.numel() * nt.tensor.element_size();
    }
    return bytes;
}

}  // namespace

void register_bench(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("bench", "Measure prefill and decode speed against the memory-bandwidth floor");
    struct Args {
        ModelArgs model;
        std::string shape;
        int version = 6, prompt = 512, decode_tokens = 32;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model, /*required=*/false);
    sub->add_option("--shape", a->shape, "Random weights of an official shape: 0.1b, 0.4b, 1.5b or 3b")
        ->check(CLI::IsMember({"0.1b", "0.4b", "1.5b", "3b"}));
    sub->add_option("--version", a->version, "Model version for --shape: 5 (5.2) or 6")->check(CLI::IsMember({5, 6}));
    sub->add_option("--prompt-tokens", a->prompt, "Prefill length")->check(CLI::Range(1, 1 << 16));
    sub->add_option("--decode-tokens", a->decode_tokens, "Decode steps timed")->check(CLI::Range(1, 1 << 16));
    sub->add_flag("--json", a->json, "End with one JSON line");
    sub->callback([&run, a] {
        run = [a] {
            if (a->model.model.empty() == a->shape.empty())
                throw UsageError("give exactly one of --model or --shape");
            set_thread_count(a->model.threads);
            ModelOptions opt;
            opt.device = a->model.device;
            opt.dtype = a->model.dtype;
            Model model = a->shape.empty() ? Model::load(a->model.model, opt)
                                           : Model::from_tensors(random_weights(named_shape(a->shape, a->version), 1), opt);
            const ModelConfig& c = model.config();
            const std::string what = a->shape.empty() ? a->model.model : ("shape " + a->shape);
            std::fprintf(stderr, "bench: %s, RWKV-%s L%d D%d V%d, %s weights, %d threads, %s\n", what.c_str(),
                         c.version_string().c_str(), c.n_layer, c.n_embd, c.vocab_size, opt.dtype.c_str(),
                         thread_count(), opt.device.c_str());
            auto gen = at::detail::createCPUGenerator(7);
            auto sync = [&] {};
            // Prefill: the prompt in one sequence-mode call, logits of the last position only.
            at::Tensor prompt = at::randint(1, c.vocab_size, {1, a->prompt}, gen, at::kLong);
            {
                State warm = model.new_state(1);
                model.forward(prompt.narrow(1, 0, std::min(a->prompt, 32)), warm, false);
            }
            double prefill_best = 1e30;
            for (int rep = 0; rep < 2; ++rep) {
                State st = model.new_state(1);
                const double t0 = now_s();
                model.forward(prompt, st, false);
                sync();
                prefill_best = std::min(prefill_best, now_s() - t0);
            }
            const double prefill_tok_s = a->prompt / prefill_best;
            auto time_decode = [&](int64_t batch) {
                State st = model.new_state(batch);
                at::Tensor tok = at::randint(1, c.vocab_size, {batch}, gen, at::kLong);
                for (int i = 0; i < 3; ++i) model.step(tok, st);  // warm-up
                const double t0 = now_s();
                for (int i = 0; i < a->decode_tokens; ++i) {
                    at::Tensor logits = model.step(tok, st);
                    tok = logits.argmax(-1);
                }
                return batch * a->decode_tokens / (now_s() - t0);
            };
            const double decode1 = time_decode(1), decode8 = time_decode(8);
            const double gbps = measure_read_gbps();
            const double bytes = decode_bytes_per_token(model.state_dict());
            const double floor_tok_s = gbps * 1e9 / bytes;
            std::printf("| metric | value |\n|---|---|\n");
            std::printf("| prefill (%d tokens) | %.1f tok/s |\n", a->prompt, prefill_tok_s);
            std::printf("| decode batch 1 | %.1f tok/s |\n", decode1);
            std::printf("| decode batch 8 | %.1f tok/s (total) |\n", decode8);
            std::printf("| weights read per token | %.1f MB |\n", bytes / 1e6);
            std::printf("| measured read bandwidth | %.1f GB/s |\n", gbps);
            std::printf("| decode floor (bandwidth / bytes) | %.1f tok/s |\n", floor_tok_s);
            std::printf("| achieved fraction of floor | %.0f%% |\n", 100.0 * decode1 / floor_tok_s);
            if (a->json) {
                nlohmann::ordered_json j;
                j["model"] = what;
                j["version"] = c.version_string();
                j["dtype"] = opt.dtype;
                j["device"] = opt.device;
                j["threads"] = thread_count();
                j["prompt_tokens"] = a->prompt;
                j["prefill_tok_s"] = prefill_tok_s;
                j["decode_tok_s"] = decode1;
                j["decode_batch8_tok_s"] = decode8;
                j["weight_bytes_per_token"] = bytes;
                j["read_gbps"] = gbps;
                j["floor_decode_tok_s"] = floor_tok_s;
                j["floor_fraction"] = decode1 / floor_tok_s;
                std::printf("%s\n", j.dump().c_str());
            }
            return 0;
        };
    });
}

}  // namespace aviary::cli
