// The one lookup of the shipped demo models (shipped_model.h): environment variable, installed share directory,
// source tree. Replaces the copies the music, vision and audio modules each had.
#include "aviary/core/shipped_model.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "aviary/core/error.h"

namespace fs = std::filesystem;

namespace aviary {
namespace {

// The first file in `dir` whose name matches `pattern` (at most one '*'), in sorted order; "" when none does.
std::string first_match(const fs::path& dir, const std::string& pattern) {
    std::error_code ec;
    const size_t star = pattern.find('*');
    if (star == std::string::npos) {
        const fs::path p = dir / pattern;
        return fs::is_regular_file(p, ec) ? p.string() : std::string();
    }
    if (!fs::is_directory(dir, ec)) return "";
    const std::string head = pattern.substr(0, star), tail = pattern.substr(star + 1);
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        if (n.size() >= head.size() + tail.size() && n.compare(0, head.size(), head) == 0 &&
            n.compare(n.size() - tail.size(), tail.size(), tail) == 0 && e.is_regular_file(ec))
            found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    return found.empty() ? std::string() : found.front();
}

}  // namespace

std::string find_shipped_model_in(const std::string& file_name, const std::string& env_var,
                                  const std::string& install_dir, const std::string& source_dir) {
    AVIARY_CHECK(std::count(file_name.begin(), file_name.end(), '*') <= 1, "find_shipped_model: '", file_name,
                 "' has more than one '*'");
    if (const char* env = std::getenv(env_var.c_str()); env && *env) {
        AVIARY_CHECK(fs::exists(env), env_var, " names '", env, "', which does not exist");
        return env;
    }
    for (const std::string& dir : {install_dir, source_dir}) {
        const std::string found = first_match(dir, file_name);
        if (!found.empty()) return found;
    }
    AVIARY_FAIL("cannot find the shipped model ", file_name, " (looked in $", env_var, ", ", install_dir, ", ",
                source_dir, "); pass --model");
}

std::string find_shipped_model(const std::string& file_name, const std::string& env_var) {
    return find_shipped_model_in(file_name, env_var, std::string(AVIARY_INSTALL_DATADIR) + "/models",
                                 std::string(AVIARY_SOURCE_DIR) + "/assets/models");
}

}  // namespace aviary
