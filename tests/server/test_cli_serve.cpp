// `aviary serve` command-line tests: usage errors (exit 2), a model that cannot be loaded (exit 1, one error line),
// and a real start on a free port that answers HTTP and stops cleanly (exit 0) on SIGTERM.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/cli_run.h"

namespace aviary::test {
namespace {

TEST(CliServe, UsageAndLoadErrors) {
    const auto dir = scratch_dir("cli_serve");
    auto r = run_cli("serve", "", dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    r = run_cli("serve --model x.pth --port 70000", "", dir);
    EXPECT_EQ(r.code, 2) << r.err;
    r = run_cli("serve --model " + (dir / "missing.safetensors").string() + " --port 0", "", dir);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("missing.safetensors"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliServe, ServesAndStopsOnSigterm) {
    const auto dir = scratch_dir("cli_serve_run");
    const auto err = dir / "stderr.txt";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        freopen(err.c_str(), "w", stderr);
        const std::string model = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
        execl(AVIARY_CLI_PATH, AVIARY_CLI_PATH, "serve", "--model", model.c_str(), "--port", "0", "--api-key", "k",
              static_cast<char*>(nullptr));
        _exit(127);
    }
    // The port from "listening on http://127.0.0.1:PORT".
    int port = 0;
    for (int i = 0; i < 600 && port == 0; ++i) {
        std::smatch m;
        const std::string text = slurp(err);
        if (std::regex_search(text, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)")))
            port = std::stoi(m[1]);
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(port, 0) << slurp(err);
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    auto unauthorized = c.Get("/health");
    ASSERT_TRUE(unauthorized);
    EXPECT_EQ(unauthorized->status, 401);
    auto r = c.Post("/v1/completions", {{"Authorization", "Bearer k"}}, R"({"prompt": "X:1\n", "max_tokens": 5})",
                    "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(nlohmann::json::parse(r->body)["object"], "text_completion");
    kill(pid, SIGTERM);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status)) << "killed by a signal";
    EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(err);
    EXPECT_NE(slurp(err).find("stopping (SIGTERM)"), std::string::npos);
}

}  // namespace
}  // namespace aviary::test
