// A fresh scratch directory per test executable and tag, $TMPDIR/aviary_<tag>_<pid>: for any test (cli_run.h, which
// names the CLI, includes it too).
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace aviary::test {

inline std::filesystem::path scratch_dir(const std::string& tag) {
    auto d = std::filesystem::temp_directory_path() / ("aviary_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

}  // namespace aviary::test
