// Runs the real `aviary` binary for command-line tests: captures exit code, signal, stdout and stderr.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/scratch_dir.h"

namespace aviary::test {

struct CliResult {
    int code = -1;
    bool signaled = false;
    std::string out, err;
};

inline std::string slurp(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A tiny JSONL corpus (30 short repeated sentences) in `dir`, written once; returns its path.
inline std::string tiny_corpus(const std::filesystem::path& dir) {
    const auto p = dir / "corpus.jsonl";
    if (!std::filesystem::exists(p)) {
        std::ofstream f(p);
        for (int i = 0; i < 30; ++i)
            f << "{\"text\": \"the quick brown fox " << (i % 3) << " jumps over the lazy dog\"}\n";
    }
    return p.string();
}

// Runs `aviary ARGS` with `stdin_text` on stdin; scratch files go to `scratch`. `prefix` goes before the program in
// the shell command (e.g. "env -u VAR").
inline CliResult run_cli(const std::string& args, const std::string& stdin_text, const std::filesystem::path& scratch,
                         const std::string& prefix = "") {
    const auto in = scratch / "stdin.txt", out = scratch / "stdout.txt", err = scratch / "stderr.txt";
    std::ofstream(in, std::ios::binary) << stdin_text;
    const std::string cmd = (prefix.empty() ? "" : prefix + " ") + std::string(AVIARY_CLI_PATH) + " " + args + " <" +
                            in.string() + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    CliResult r;
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    // std::system runs /bin/sh, which reports a child killed by a signal as 128+n.
    r.signaled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) > 128);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

// Exactly one line on stderr, starting with "error: ", the given exit code and no signal.
inline void expect_one_error_line(const CliResult& r, int code, const std::string& needle = "") {
    EXPECT_FALSE(r.signaled);
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    if (!needle.empty()) {
        EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    }
}

}  // namespace aviary::test
