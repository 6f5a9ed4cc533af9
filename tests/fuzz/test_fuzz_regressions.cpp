// Replays every fuzz harness (fuzz_*.cpp, linked in) on its seeds (tests/fuzz/seeds/TARGET/) and on the inputs that
// once crashed it (tests/fuzz/regressions/TARGET/): each must end cleanly (a value or aviary::Error), under the release
// and the asan builds alike. A new finding goes into regressions/ with the fix (docs/RELIABILITY.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "fuzz/fuzz_common.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> target_names() {
    std::vector<std::string> names;
    for (const auto& t : aviary::fuzz::targets()) names.push_back(t.name);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<fs::path> inputs_of(const std::string& target) {
    std::vector<fs::path> out;
    for (const char* kind : {"seeds", "regressions"}) {
        const fs::path dir = fs::path(AVIARY_SOURCE_DIR) / "tests/fuzz" / kind / target;
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.is_regular_file()) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

class FuzzRegression : public testing::TestWithParam<std::string> {};

TEST_P(FuzzRegression, inputs_end_cleanly) {
    const auto& all = aviary::fuzz::targets();
    const auto it = std::find_if(all.begin(), all.end(), [&](const auto& t) { return GetParam() == t.name; });
    ASSERT_NE(it, all.end());
    const auto inputs = inputs_of(GetParam());
    for (const auto& path : inputs) {
        SCOPED_TRACE(path.string());
        const std::string bytes = aviary::fuzz::read_whole_file(path.string());
        EXPECT_NO_THROW(it->run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
    // The empty input too (every harness must take it).
    EXPECT_NO_THROW(it->run(nullptr, 0));
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegression, testing::ValuesIn(target_names()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
