// ABC corpus readers: .abc collections split into tunes at `X:` lines, the IrishMAN JSON layout
// ({"control code", "abc notation"}; TunesFormer builds control code + ABC minus its X: line), and the
// seeded train/validation split by tune (multimodal_spec.md C.4, C.6).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "aviary/music/abc.h"

namespace fs = std::filesystem;

namespace aviary::music {
namespace {

std::string read_file(const std::string& path) {
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read '", path, "'");
    return text;
}

void trim_trailing_blank(std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (!s.empty()) s += '\n';
}

}  // namespace

std::vector<Tune> split_abc_collection(std::string_view text, const std::string& source) {
    std::vector<Tune> tunes;
    size_t pos = 0;
    bool in_tune = false;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = end + 1;
        if (line.substr(0, 2) == "X:") {
            if (in_tune) trim_trailing_blank(tunes.back().abc);
            tunes.push_back({std::string(), source + "#" + std::to_string(tunes.size() + 1)});
            in_tune = true;
        }
        if (!in_tune) continue;
        tunes.back().abc.append(line);
        tunes.back().abc += '\n';
    }
    if (in_tune) trim_trailing_blank(tunes.back().abc);
    return tunes;
}

std::vector<Tune> read_abc_path(const std::string& path) {
    std::error_code ec;
    AVIARY_CHECK(fs::exists(path, ec), "ABC path '", path, "' does not exist");
    std::vector<std::string> files;
    if (fs::is_directory(path)) {
        for (const auto& e : fs::recursive_directory_iterator(path))
            if (e.is_regular_file() && e.path().extension() == ".abc") files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        AVIARY_CHECK(!files.empty(), "directory '", path, "' holds no .abc files");
    } else {
        files.push_back(path);
    }
    std::vector<Tune> all;
    for (const auto& f : files) {
        auto t = split_abc_collection(read_file(f), f);
        all.insert(all.end(), t.begin(), t.end());
    }
    return all;
}

std::vector<Tune> read_irishman_json(const std::string& path) {
    return parse_irishman_json(read_file(path), path);
}

std::vector<Tune> parse_irishman_json(std::string_view text, const std::string& source) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL("'", source, "' is not valid JSON (", e.what(), ")");
    }
    AVIARY_CHECK(j.is_array(), "'", source, "': expected a JSON array of {\"control code\", \"abc notation\"} records");
    std::vector<Tune> tunes;
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& r = j[i];
        AVIARY_CHECK(r.is_object() && r.contains("abc notation") && r["abc notation"].is_string(), "'", source,
                     "' record ", i, ": missing string field \"abc notation\"");
        std::string abc = r["abc notation"].get<std::string>();
        std::string code = r.contains("control code") && r["control code"].is_string()
                               ? r["control code"].get<std::string>()
                               : std::string();
        if (abc.rfind("X:", 0) == 0) {  // TunesFormer drops the first (X:) line
            const size_t nl = abc.find('\n');
            abc = nl == std::string::npos ? std::string() : abc.substr(nl + 1);
        }
        if (!code.empty() && code.back() != '\n') code += '\n';
        tunes.push_back({code + abc, source + "#" + std::to_string(i)});
    }
    return tunes;
}

void split_train_validation(const std::vector<Tune>& tunes, double validation_fraction, uint64_t seed,
                            std::vector<Tune>& train, std::vector<Tune>& validation) {
    AVIARY_CHECK(validation_fraction >= 0 && validation_fraction < 1, "validation fraction must be in [0, 1), got ",
                 validation_fraction);
    std::vector<size_t> order(tunes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(seed);
    // Fisher–Yates with our own draws: std::shuffle's sequence differs between standard libraries.
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(rng() % i)]);
    size_t n_val = size_t(validation_fraction * double(tunes.size()) + 0.5);
    if (validation_fraction > 0 && n_val == 0 && tunes.size() > 1) n_val = 1;
    train.clear();
    validation.clear();
    for (size_t i = 0; i < order.size(); ++i) (i < n_val ? validation : train).push_back(tunes[order[i]]);
}

}  // namespace aviary::music
