// `aviary research mqar` (issue 10): a tiny grid writes the self-describing result folder (config, CSV with one
// row per run, loss curves, plots); bad lists are usage errors with one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/cli_run.h"
#include "common/device.h"

namespace fs = std::filesystem;
using aviary::test::expect_one_error_line;
using aviary::test::run_cli;
using aviary::test::slurp;

namespace {

fs::path tmp_dir() {
    static const fs::path dir = aviary::test::scratch_dir("cli_research_test");
    return dir;
}

TEST(CliResearch, MqarGridWritesAResultFolder) {
    const fs::path out = tmp_dir() / "mqar";
    auto r = run_cli(
        "research mqar -q --threads 1 --arch 4,6 --dims 64 --seq 16,32 --pairs 2 --vocab 32 --steps 3 "
        "--batch 4 --eval-rows 4 --out " +
            out.string(),
        "", tmp_dir());
    ASSERT_EQ(r.code, 0) << r.err;
    auto cfg = nlohmann::json::parse(slurp(out / "config.json"));
    EXPECT_EQ(cfg["arch"], nlohmann::json::array({4, 6}));
    std::istringstream csv(slurp(out / "results.csv"));
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line, "arch,dim,seq,pairs,accuracy,final_loss,params,seconds");
    int rows = 0;
    while (std::getline(csv, line)) ++rows;
    EXPECT_EQ(rows, 4);  // 2 architectures x 1 width x 2 lengths
    std::istringstream runs(slurp(out / "runs.jsonl"));
    int curves = 0;
    while (std::getline(runs, line)) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["losses"].size(), 3u);
        ++curves;
    }
    EXPECT_EQ(curves, 4);
    EXPECT_TRUE(fs::exists(out / "mqar_seq16.png"));
    EXPECT_TRUE(fs::exists(out / "mqar_seq32.png"));
}

// --plot-only redraws the PNGs of a results.csv (e.g. one merged from several device processes) without training;
// a missing or foreign CSV is a one-line error.
TEST(CliResearch, PlotOnlyRedrawsFromTheCsv) {
    const fs::path out = tmp_dir() / "replot";
    fs::create_directories(out);
    std::ofstream(out / "results.csv") << "arch,dim,seq,pairs,accuracy,final_loss,params,seconds\n"
                                          "4,64,64,4,0.47,1.08,116352,108.3\n6,64,64,4,1.0,0.0006,182528,108.7\n"
                                          "6,128,64,4,1.0,0.0003,578048,101.5\n6,64,128,8,0.30,2.1,182528,108.0\n";
    auto r = run_cli("research mqar --plot-only --out " + out.string(), "", tmp_dir());
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["plots"].size(), 2u);  // one per sequence length found in the CSV
    EXPECT_TRUE(fs::exists(out / "mqar_seq64.png"));
    EXPECT_TRUE(fs::exists(out / "mqar_seq128.png"));
    EXPECT_FALSE(fs::exists(out / "config.json"));  // nothing was trained or rewritten
    expect_one_error_line(run_cli("research mqar --plot-only --out " + (tmp_dir() / "none").string(), "", tmp_dir()), 1,
                          "results.csv");
    const fs::path bad = tmp_dir() / "bad_csv";
    fs::create_directories(bad);
    std::ofstream(bad / "results.csv") << "step,loss\n1,2\n";
    expect_one_error_line(run_cli("research mqar --plot-only --out " + bad.string(), "", tmp_dir()), 1,
                          "not an MQAR results.csv");
}

TEST(CliResearch, BadListsAreUsageErrors) {
    expect_one_error_line(run_cli("research mqar --arch 3 --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "--arch");
    expect_one_error_line(run_cli("research mqar --dims 100 --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "multiple of 64");
    expect_one_error_line(run_cli("research mqar --seq 64,abc --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "abc");
    expect_one_error_line(run_cli("research mqar --seq 8 --pairs 4 --out " + (tmp_dir() / "x").string(), "", tmp_dir()),
                          1, "too short");
    expect_one_error_line(run_cli("research mqar --precision fp16 --out " + (tmp_dir() / "x").string(), "", tmp_dir()),
                          2, "--precision");
    if (!aviary::test::cuda_usable()) {  // no CUDA: one line, and no result folder
        expect_one_error_line(
            run_cli("research mqar --device cuda --out " + (tmp_dir() / "cuda").string(), "", tmp_dir()), 1,
            "--device cuda");
        EXPECT_FALSE(fs::exists(tmp_dir() / "cuda"));
    }
}

}  // namespace

namespace {

TEST(CliResearch, LossByPositionOnTextOverlaysModels) {
    const fs::path dir = tmp_dir() / "lbp";
    fs::create_directories(dir / "docs");
    for (int i = 0; i < 3; ++i)
        std::ofstream(dir / "docs" / ("d" + std::to_string(i) + ".txt")) << std::string(20 + 10 * i, char('a' + i));
    // two tiny byte models from one training step each (different seeds)
    for (int s = 1; s <= 2; ++s) {
        auto r = run_cli("train text -q --tokenizer byte --model init:2,64," + std::to_string(4 + s) +
                             " --ctx-len 8 --batch 1 --steps 1 --threads 1 --data " + (dir / "docs").string() +
                             " --out " + (dir / ("m" + std::to_string(s))).string(),
                         "", tmp_dir());
        ASSERT_EQ(r.code, 0) << r.err;
    }
    auto r =
        run_cli("eval loss-by-position --tokenizer byte --max-len 64 --sigma 2 --threads 1 -m " +
                    (dir / "m1" / "model.safetensors").string() + " -m " + (dir / "m2" / "model.safetensors").string() +
                    " --data " + (dir / "docs").string() + " --out " + (dir / "lbp").string(),
                "", tmp_dir());
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["documents"], 3);
    ASSERT_EQ(j["models"].size(), 2u);
    EXPECT_GT(j["models"][0]["mean_loss"].get<double>(), 0.0);
    std::istringstream csv(slurp(dir / "lbp.csv"));
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line, "position,loss_0,smoothed_0,loss_1,smoothed_1,count");
    int rows = 0;
    while (std::getline(csv, line)) ++rows;
    EXPECT_EQ(rows, 39);  // the longest document has 40 bytes: 39 predictions
    EXPECT_TRUE(fs::exists(dir / "lbp.png"));
    expect_one_error_line(
        run_cli("eval loss-by-position --tokenizer byte -m " + (dir / "m1" / "model.safetensors").string() +
                    " --min-len 1000 --data " + (dir / "docs").string() + " --out " + (dir / "x").string(),
                "", tmp_dir()),
        1, "no document");
}

}  // namespace
