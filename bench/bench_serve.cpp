// aviary-bench-serve: a bounded load test of `aviary serve` on loopback. Starts the server in this process on a free
// port (the shipped music model by default, or --model, or a random model of an official shape with --shape), then
//   1. load: C clients, each sending R completions one after another (distinct prompts, seeded) — throughput,
//      p50/p99 latency, failures;
//   2. decode: one stream of N tokens alone, then 8 such streams together — aggregate tokens/s and the ratio.
// Stops by itself; the last line is one JSON object with every figure. Run it holding the build lock.
#include <httplib.h>

#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "aviary/core/blas_core.h"
#include "aviary/core/checkpoint.h"
#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/model_shapes.h"
#include "aviary/core/threads.h"
#include "aviary/server/server.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * double(v.size() - 1) + 0.5));
    return v[i];
}

struct Outcome {
    bool ok = false;
    int64_t tokens = 0;
};

Outcome complete(int port, const std::string& prompt, int max_tokens, uint64_t seed) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(600);
    const json body{{"prompt", prompt},    {"max_tokens", max_tokens}, {"seed", seed}, {"temperature", 1.0},
                    {"stop", "@@never@@"}, {"ignore_eos", true}};  // every request runs to max_tokens
    auto r = c.Post("/v1/completions", body.dump(), "application/json");
    Outcome o;
    if (!r || r->status != 200) {
        std::fprintf(stderr, "request failed: %s\n",
                     r ? (std::to_string(r->status) + " " + r->body.substr(0, 200)).c_str()
                       : httplib::to_string(r.error()).c_str());
        return o;
    }
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return o;
    o.ok = true;
    o.tokens = j["usage"]["completion_tokens"].get<int64_t>();
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    aviary::ensure_blas_core(argv);
    CLI::App app{"Bounded load test of aviary serve on loopback", "aviary-bench-serve"};
    std::string model = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    std::string shape, dtype = "bf16";
    int clients = 16, requests = 20, max_tokens = 32, decode_tokens = 256, max_batch = 8, threads = 0, streams = 8;
    app.add_option("--model", model, "Text model (default: the shipped music model)");
    app.add_option("--shape", shape,
                   "Instead: a random v6 model of this official shape (0.1b, 0.4b), matrices in --dtype");
    app.add_option("--dtype", dtype, "Matrices of the --shape model: bf16 | fp32")
        ->check(CLI::IsMember({"bf16", "fp32"}));
    app.add_option("--clients", clients, "Concurrent clients of the load test");
    app.add_option("--requests", requests, "Requests per client");
    app.add_option("--max-tokens", max_tokens, "Tokens per load-test request");
    app.add_option("--decode-tokens", decode_tokens, "Tokens per stream of the decode test");
    app.add_option("--streams", streams, "Concurrent streams of the decode test");
    app.add_option("--max-batch", max_batch, "Server --max-batch");
    app.add_option("--threads", threads, "CPU threads (default: all)");
    CLI11_PARSE(app, argc, argv);

    aviary::set_thread_count(threads);
    aviary::server::ServerOptions o;
    o.port = 0;
    o.max_batch = max_batch;
    o.http_threads = clients + streams + 4;
    o.threads = threads;
    std::string temp;
    if (!shape.empty()) {
        // A random model: the World tokenizer over its 65536 ids (the text is noise; the timing is real).
        temp = (std::filesystem::temp_directory_path() / ("aviary-bench-serve-" + shape + ".safetensors")).string();
        aviary::write_safetensors(temp, aviary::random_weights(aviary::named_shape(shape, 6), 1));
        model = temp;
        o.dtype = dtype;  // the server loads the matrices in this precision (as `aviary bench --shape --dtype`)
    }
    o.model_path = model;
    aviary::server::Server srv(o);
    srv.start();
    const int port = srv.port();
    std::fprintf(stderr, "server on port %d, model %s\n", port, model.c_str());
    complete(port, "warm-up\n", 4, 1);

    // 1. Load test.
    std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
    std::atomic<int> failures{0};
    std::atomic<int64_t> tokens{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int c = 0; c < clients; ++c)
        pool.emplace_back([&, c] {
            for (int r = 0; r < requests; ++r) {
                const auto a = Clock::now();
                const Outcome out = complete(port, "X:" + std::to_string(c * 1000 + r) + "\nT:Load\nK:G\n", max_tokens,
                                             uint64_t(c * 1000 + r));
                lat[size_t(c)].push_back(seconds(a, Clock::now()));
                if (!out.ok) ++failures;
                tokens += out.tokens;
            }
        });
    for (auto& t : pool) t.join();
    const double load_s = seconds(t0, Clock::now());
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    const int total = clients * requests;

    // 2. Decode throughput: 1 stream, then `streams` together.
    auto run_streams = [&](int n) {
        std::vector<Outcome> outs(static_cast<size_t>(n));
        std::vector<std::thread> ts;
        srv.hold_scheduling(true);  // start them in the same step
        for (int i = 0; i < n; ++i)
            ts.emplace_back([&, i] {
                outs[size_t(i)] = complete(port, "X:" + std::to_string(90000 + i) + "\n", decode_tokens, 7 + i);
            });
        for (int i = 0; i < 2000 && srv.stats().queued < n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const auto a = Clock::now();
        srv.hold_scheduling(false);
        for (auto& t : ts) t.join();
        const double s = seconds(a, Clock::now());
        int64_t tok = 0;
        for (auto& x : outs) tok += x.tokens;
        return std::pair<double, int64_t>{s, tok};
    };
    const auto [one_s, one_tok] = run_streams(1);
    const auto [many_s, many_tok] = run_streams(streams);
    const double one_rate = double(one_tok) / one_s, many_rate = double(many_tok) / many_s;
    srv.stop();
    if (!temp.empty()) std::filesystem::remove(temp);

    std::printf(
        "load: %d clients x %d requests (max_tokens %d): %.2f s, %.1f req/s, %.1f generated tok/s, "
        "latency p50 %.3f s p99 %.3f s, failures %d\n",
        clients, requests, max_tokens, load_s, total / load_s, double(tokens) / load_s, percentile(all, 0.5),
        percentile(all, 0.99), failures.load());
    std::printf("decode: 1 stream %.1f tok/s (%lld tokens); %d streams %.1f tok/s aggregate (%lld tokens, %.2fx)\n",
                one_rate, (long long)one_tok, streams, many_rate, (long long)many_tok, many_rate / one_rate);
    const json out{{"model", std::filesystem::path(model).filename().string()},
                   {"shape", shape},
                   {"dtype", shape.empty() ? "file" : dtype},
                   {"cpu", aviary::cpu_info().model},
                   {"threads", aviary::thread_count()},
                   {"clients", clients},
                   {"requests", total},
                   {"max_tokens", max_tokens},
                   {"load_s", load_s},
                   {"req_per_s", total / load_s},
                   {"generated_tok_s", double(tokens) / load_s},
                   {"p50_s", percentile(all, 0.5)},
                   {"p99_s", percentile(all, 0.99)},
                   {"failures", failures.load()},
                   {"decode_1_tok_s", one_rate},
                   {"decode_streams", streams},
                   {"decode_n_tok_s", many_rate},
                   {"decode_speedup", many_rate / one_rate}};
    std::printf("%s\n", out.dump().c_str());
    return failures.load() == 0 ? 0 : 1;
}
