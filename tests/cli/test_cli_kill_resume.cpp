// The bounded form of the kill-point recovery campaign (issue 20 item 5, docs/RELIABILITY.md "Kill-point
// recovery"): tools/kill_resume.py SIGKILLs each `aviary train` command 3 times (seeded points, half of them aimed
// at a checkpoint or output write), resumes it to the end and checks that nothing partial is visible, that the newest
// checkpoint is the one resumed from, and that the final tensors equal an uninterrupted run's bit for bit. The full
// campaign (--kills 50) is run by hand; this keeps CI on the same code path.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli_run.h"

namespace fs = std::filesystem;

TEST(KillResume, ThreeKillsPerTrainCommandRecoverBitExact) {
    if (std::system("test -x /usr/bin/python3") != 0) GTEST_SKIP() << "/usr/bin/python3 not installed";
    const fs::path dir = aviary::test::scratch_dir("kill_resume");
    const fs::path results = dir / "results.json", log = dir / "log.txt";
    const std::string cmd = "/usr/bin/python3 " + std::string(AVIARY_SOURCE_DIR) +
                            "/tools/kill_resume.py --kills 3 --seed 20 --aviary " + AVIARY_CLI_PATH + " --work " +
                            (dir / "work").string() + " --json " + results.string() + " >" + log.string() + " 2>&1";
    const int status = std::system(cmd.c_str());
    const std::string out = aviary::test::slurp(log);
    ASSERT_TRUE(WIFEXITED(status)) << out;
    EXPECT_EQ(WEXITSTATUS(status), 0) << out;
    const auto j = nlohmann::json::parse(aviary::test::slurp(results));
    ASSERT_FALSE(j["results"].empty()) << out;
    EXPECT_EQ(j["results"][0]["command"], "train text") << out;  // the core trainer is always built
    for (const auto& r : j["results"]) {
        EXPECT_EQ(r["kills"], 3) << r.dump();
        EXPECT_EQ(r["recovered"], 3) << r.dump();
        EXPECT_GE(r["runs"].get<int>(), 1) << r.dump();
        EXPECT_EQ(r["bit_exact"], r["runs"]) << r.dump();
        EXPECT_TRUE(r["problems"].empty()) << r.dump();
    }
    std::printf("%s", out.c_str());
}
