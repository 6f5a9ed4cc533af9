// `aviary research mqar`: the paper's associative-recall experiment (Figure 4) at small scale — RWKV-4, Eagle and
// Finch trained on MQAR (core/research_mqar.h) for every (architecture, width, sequence length), written to a
// self-describing result folder: config.json, results.csv, runs.jsonl (loss curves), one PNG per length.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/research_mqar.h"
#include "aviary/core/threads.h"
#include "cli_common.h"
#ifdef AVIARY_HAVE_MUSIC
#include "aviary/music/music.h"  // plot_curves_png (OpenCV)
#endif

namespace fs = std::filesystem;

namespace aviary::cli {
namespace {

std::vector<int64_t> parse_int_list(const std::string& text, const char* option) {
    std::vector<int64_t> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            size_t used = 0;
            const long long v = std::stoll(item, &used);
            if (used != item.size() || v <= 0) throw std::invalid_argument(item);
            out.push_back(v);
        } catch (const std::exception&) {
            throw UsageError(std::string(option) + ": '" + item + "' is not a positive integer (expected e.g. 64,128)");
        }
    }
    if (out.empty()) throw UsageError(std::string(option) + ": expected a comma-separated list");
    return out;
}

// One PNG per sequence length: accuracy by model width, one curve per architecture (acc[seq][arch][dim]; NaN =
// no result). Without OpenCV in the build, a warning.
void plot_mqar(const std::string& out_dir, const std::vector<int64_t>& archs, const std::vector<int64_t>& dims,
               const std::vector<int64_t>& seqs, const std::vector<std::vector<std::vector<double>>>& acc,
               nlohmann::json& out) {
#ifdef AVIARY_HAVE_MUSIC
    std::vector<std::string> width_ticks, labels;
    for (auto d : dims) width_ticks.push_back(std::to_string(d));
    for (auto v : archs) labels.push_back(v == 4 ? "RWKV-4" : v == 5 ? "Eagle (RWKV-5)" : "Finch (RWKV-6)");
    for (size_t si = 0; si < seqs.size(); ++si) {
        const std::string png = (fs::path(out_dir) / ("mqar_seq" + std::to_string(seqs[si]) + ".png")).string();
        try {
            music::plot_curves_png(png, acc[si], labels, "MQAR accuracy, sequence length " + std::to_string(seqs[si]),
                                   "model width (n_embd)", "accuracy", width_ticks);
            out["plots"].push_back(png);
        } catch (const Error& e) {
            std::fprintf(stderr, "warning: %s\n", e.what());
        }
    }
#else
    std::fprintf(stderr, "warning: this build has no plotting (the music module with OpenCV); the CSV is written\n");
#endif
}

// --plot-only: the grid and accuracies of an existing results.csv (arch,dim,seq,pairs,accuracy,…).
void replot_mqar(const std::string& out_dir, nlohmann::json& out) {
    const std::string path = (fs::path(out_dir) / "results.csv").string();
    std::ifstream f(path);
    AVIARY_CHECK(f.good(), "cannot read '", path, "' (expected the results.csv of an earlier `research mqar`)");
    std::string line;
    std::getline(f, line);
    AVIARY_CHECK(line.rfind("arch,dim,seq,pairs,accuracy", 0) == 0, "'", path, "' is not an MQAR results.csv");
    std::vector<std::array<double, 4>> rows;  // arch, dim, seq, accuracy
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        std::stringstream ss(line);
        std::string cell;
        std::vector<double> v;
        while (std::getline(ss, cell, ',')) {
            try {
                v.push_back(std::stod(cell));
            } catch (const std::exception&) {
                AVIARY_FAIL("'", path, "': bad number '", cell, "' in row '", line, "'");
            }
        }
        AVIARY_CHECK(v.size() >= 5, "'", path, "': row '", line, "' has fewer than 5 columns");
        rows.push_back({v[0], v[1], v[2], v[4]});
    }
    AVIARY_CHECK(!rows.empty(), "'", path, "' has no results");
    std::set<int64_t> a_set, d_set, s_set;
    for (const auto& r : rows) a_set.insert(int64_t(r[0])), d_set.insert(int64_t(r[1])), s_set.insert(int64_t(r[2]));
    const std::vector<int64_t> archs(a_set.begin(), a_set.end()), dims(d_set.begin(), d_set.end()),
        seqs(s_set.begin(), s_set.end());
    std::vector<std::vector<std::vector<double>>> acc(
        seqs.size(), std::vector<std::vector<double>>(archs.size(), std::vector<double>(dims.size(), std::nan(""))));
    auto index = [](const std::vector<int64_t>& v, double x) {
        return size_t(std::find(v.begin(), v.end(), int64_t(x)) - v.begin());
    };
    for (const auto& r : rows) acc[index(seqs, r[2])][index(archs, r[0])][index(dims, r[1])] = r[3];
    plot_mqar(out_dir, archs, dims, seqs, acc, out);
}

}  // namespace

void register_research(CLI::App& app, Runner& run) {
    auto* rs = app.add_subcommand("research", "Small-scale reproductions of the paper's experiments");
    rs->require_subcommand(1);
    auto* sub = rs->add_subcommand("mqar", "Multi-query associative recall: accuracy by architecture, width, length");
    struct Args {
        std::string arch = "4,5,6", dims = "64,128,256", seq = "64,128,256,512", out = "results/mqar", device = "cpu";
        int64_t layers = 2, steps = 400, batch = 32, vocab = 512, pairs = 0, eval_rows = 256;
        double lr = 1e-3;
        uint64_t seed = 1;
        int threads = 0;
        bool quiet = false, plot_only = false;
        TrainPrecision precision = TrainPrecision::Auto;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--arch", a->arch, "RWKV versions: 4 (RWKV-4), 5 (Eagle), 6 (Finch), comma-separated");
    sub->add_option("--dims", a->dims, "Model widths (multiples of 64)");
    sub->add_option("--seq", a->seq, "Sequence lengths");
    sub->add_option("--layers", a->layers, "Layers per model")->check(CLI::Range(2, 64));
    sub->add_option("--steps", a->steps, "Training steps per run")->check(CLI::PositiveNumber);
    sub->add_option("--batch", a->batch, "Sequences per step")->check(CLI::PositiveNumber);
    sub->add_option("--lr", a->lr, "Peak learning rate")->check(CLI::PositiveNumber);
    sub->add_option("--vocab", a->vocab, "Vocabulary (keys in [1, V/2), values in [V/2, V))")
        ->check(CLI::Range(8, 65536));
    sub->add_option("--pairs", a->pairs, "Key-value pairs per sequence (0: seq/16, at least 4)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--eval-rows", a->eval_rows, "Held-out sequences per run")->check(CLI::PositiveNumber);
    sub->add_option("--seed", a->seed, "Seed of init and data");
    sub->add_option("--threads", a->threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
    sub->add_option("--device", a->device, "cpu or cuda (a CUDA build of LibTorch)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    sub->add_option("--out,-o", a->out, "Result folder");
    add_precision_option(sub, a->precision);
    sub->add_flag("--quiet,-q", a->quiet, "No progress lines");
    sub->add_flag("--plot-only", a->plot_only, "Only redraw the PNGs from --out's results.csv (no training)");
    sub->callback([&run, a] {
        run = [a] {
            if (a->plot_only) {
                nlohmann::json out = {{"out", a->out}};
                replot_mqar(a->out, out);
                std::printf("%s\n", out.dump().c_str());
                return 0;
            }
            const auto archs = parse_int_list(a->arch, "--arch");
            const auto dims = parse_int_list(a->dims, "--dims");
            const auto seqs = parse_int_list(a->seq, "--seq");
            for (auto v : archs)
                if (v < 4 || v > 6) throw UsageError("--arch: version " + std::to_string(v) + " (expected 4, 5 or 6)");
            for (auto d : dims)
                if (d % 64 != 0) throw UsageError("--dims: " + std::to_string(d) + " is not a multiple of 64");
            check_device(a->device);  // before anything is written
            set_thread_count(a->threads);
            fs::create_directories(a->out);
            nlohmann::json cfg = {
                {"experiment", "mqar"},
                {"arch", archs},
                {"dims", dims},
                {"seq", seqs},
                {"layers", a->layers},
                {"steps", a->steps},
                {"batch", a->batch},
                {"lr", a->lr},
                {"vocab", a->vocab},
                {"pairs", a->pairs},
                {"eval_rows", a->eval_rows},
                {"seed", a->seed},
                {"device", a->device},
                {"note", "small-scale reproduction of the paper's Figure 4 (MQAR); pairs 0 = seq/16"}};
            write_file_atomic((fs::path(a->out) / "config.json").string(), cfg.dump(2) + "\n");
            std::string csv = "arch,dim,seq,pairs,accuracy,final_loss,params,seconds\n";
            std::string runs;
            // accuracy[seq][arch][dim]
            std::vector<std::vector<std::vector<double>>> acc(seqs.size(),
                                                              std::vector<std::vector<double>>(archs.size()));
            const size_t total = archs.size() * dims.size() * seqs.size();
            size_t done = 0;
            for (size_t si = 0; si < seqs.size(); ++si)
                for (size_t ai = 0; ai < archs.size(); ++ai)
                    for (int64_t dim : dims) {
                        MqarRunOptions o;
                        o.task.vocab = a->vocab;
                        o.task.seq_len = seqs[si];
                        o.task.pairs = a->pairs > 0 ? a->pairs : std::max<int64_t>(4, seqs[si] / 16);
                        o.version = int(archs[ai]);
                        o.n_layer = a->layers;
                        o.n_embd = dim;
                        o.steps = a->steps;
                        o.batch = a->batch;
                        o.lr = a->lr;
                        o.eval_rows = a->eval_rows;
                        o.seed = a->seed;
                        o.device = a->device;
                        o.precision = a->precision;
                        ++done;
                        auto progress = [&](int64_t s, int64_t n, double loss) {
                            if (!a->quiet && (s % 50 == 0 || s == n))
                                std::fprintf(stderr, "[%zu/%zu] RWKV-%d D%lld T%lld step %lld/%lld loss %.4f\n", done,
                                             total, o.version, static_cast<long long>(dim),
                                             static_cast<long long>(o.task.seq_len), static_cast<long long>(s),
                                             static_cast<long long>(n), loss);
                            return true;
                        };
                        MqarRunResult r = run_mqar(o, progress);
                        acc[si][ai].push_back(r.accuracy);
                        char line[256];
                        std::snprintf(line, sizeof line, "%d,%lld,%lld,%lld,%.4f,%.4f,%lld,%.1f\n", o.version,
                                      static_cast<long long>(dim), static_cast<long long>(o.task.seq_len),
                                      static_cast<long long>(o.task.pairs), r.accuracy, r.final_loss,
                                      static_cast<long long>(r.n_params), r.seconds);
                        csv += line;
                        nlohmann::json j = {{"arch", o.version},      {"dim", dim},
                                            {"seq", o.task.seq_len},  {"pairs", o.task.pairs},
                                            {"accuracy", r.accuracy}, {"losses", r.losses}};
                        runs += j.dump() + "\n";
                        if (!a->quiet) std::fprintf(stderr, "  accuracy %.3f (%.0f s)\n", r.accuracy, r.seconds);
                        // Results so far are kept even if a later run is interrupted.
                        write_file_atomic((fs::path(a->out) / "results.csv").string(), csv);
                        write_file_atomic((fs::path(a->out) / "runs.jsonl").string(), runs);
                    }
            nlohmann::json out = {{"out", a->out}, {"results", (fs::path(a->out) / "results.csv").string()}};
            plot_mqar(a->out, archs, dims, seqs, acc, out);
            std::printf("%s\n", out.dump().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
