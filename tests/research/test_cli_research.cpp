// `aviary research mqar` (issue 10): a tiny grid writes the self-describing result folder (config, CSV with one
// row per run, loss curves, plots); bad lists are usage errors with one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/cli_run.h"

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
    auto r = run_cli("research mqar -q --threads 1 --arch 4,6 --dims 64 --seq 16,32 --pairs 2 --vocab 32 --steps 3 "
                     "--batch 4 --eval-rows 4 --out " + out.string(), "", tmp_dir());
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

TEST(CliResearch, BadListsAreUsageErrors) {
    expect_one_error_line(run_cli("research mqar --arch 3 --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "--arch");
    expect_one_error_line(run_cli("research mqar --dims 100 --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "multiple of 64");
    expect_one_error_line(run_cli("research mqar --seq 64,abc --out " + (tmp_dir() / "x").string(), "", tmp_dir()), 2,
                          "abc");
    expect_one_error_line(run_cli("research mqar --seq 8 --pairs 4 --out " + (tmp_dir() / "x").string(), "", tmp_dir()),
                          1, "too short");
}

}  // namespace
