// Readers for AudioSet metadata (../shared/reference/multimodal_spec.md B.5): class_labels_indices.csv, segment
// CSVs (3 '#' lines, `YTID, start, end, "mid,mid"`), AST JSON lists; clip lists with missing files counted.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/audio/audioset.h"
#include "aviary/audio/front_end.h"
#include "aviary/audio/sound_file.h"
#include "aviary/audio/tagger.h"
#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

namespace fs = std::filesystem;

namespace aviary::audio {

namespace {
std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}
std::string unquote(std::string s) {
    s = trim(s);
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
}
std::string read_text(const std::string& path, const char* what) {
    std::error_code ec;
    AVIARY_CHECK(fs::is_regular_file(path, ec), what, " '", path, "' does not exist or is not a file");
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read ", what, " '", path, "'");
    return text;
}
// A clip list's kind by its extension: true for an AST JSON list (.json), false for a segment CSV (.csv), else an
// error.
bool is_json_clip_list(const std::string& data_path) {
    const std::string ext = fs::path(data_path).extension().string();
    AVIARY_CHECK(ext == ".json" || ext == ".csv", "audio data '", data_path,
                 "': expected a segment CSV (.csv) or an AST JSON list (.json)");
    return ext == ".json";
}
void check_clips_dir(const std::string& csv_path, const std::string& clips_dir) {
    AVIARY_CHECK(!clips_dir.empty(), "segment CSV '", csv_path,
                 "' needs a clip directory (--clips DIR holding Y{YTID}.wav)");
    std::error_code ec;
    AVIARY_CHECK(fs::is_directory(clips_dir, ec), "clip directory '", clips_dir, "' does not exist");
}
bool parse_double(const std::string& s, double& out) {
    char* end = nullptr;
    const std::string t = trim(s);
    out = std::strtod(t.c_str(), &end);
    return !t.empty() && end == t.c_str() + t.size();
}
}  // namespace

int64_t LabelTable::find(const std::string& mid) const {
    auto it = index.find(mid);
    return it == index.end() ? -1 : it->second;
}

LabelTable label_table(const std::vector<ClassLabel>& classes) {
    LabelTable t;
    t.classes = classes;
    for (size_t i = 0; i < classes.size(); ++i) t.index[classes[i].mid] = int64_t(i);
    return t;
}

LabelTable read_class_labels(const std::string& path) {
    return parse_class_labels(read_text(path, "class label file"), path);
}

LabelTable parse_class_labels(std::string_view text, const std::string& path) {
    std::istringstream f{std::string(text)};
    std::string line;
    AVIARY_CHECK(std::getline(f, line) && trim(line) == "index,mid,display_name", "class label file '", path,
                 "' must start with the header 'index,mid,display_name'");
    std::vector<ClassLabel> classes;
    for (size_t n = 2; std::getline(f, line); ++n) {
        if (trim(line).empty()) continue;
        const size_t c1 = line.find(','), c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
        AVIARY_CHECK(c2 != std::string::npos, "'", path, "' line ", n, ": expected index,mid,\"display name\"");
        const std::string idx = trim(line.substr(0, c1));
        AVIARY_CHECK(idx == std::to_string(classes.size()), "'", path, "' line ", n, ": index '", idx,
                     "' out of order (expected ", classes.size(), ")");
        classes.push_back({trim(line.substr(c1 + 1, c2 - c1 - 1)), unquote(line.substr(c2 + 1))});
    }
    AVIARY_CHECK(!classes.empty(), "class label file '", path, "' lists no classes");
    return label_table(classes);
}

std::string default_class_labels_path() {
    static const char* kName = "class_labels_indices.csv";
    if (const char* env = std::getenv("AVIARY_AUDIO_LABELS"); env && *env) return env;
    const std::string candidates[] = {std::string(AVIARY_INSTALL_DATADIR) + "/audio/" + kName,
                                      std::string(AVIARY_SOURCE_DIR) + "/assets/audio/" + kName};
    for (const auto& c : candidates)
        if (fs::exists(c)) return c;
    AVIARY_FAIL("cannot find ", kName, " (looked in $AVIARY_AUDIO_LABELS, ", candidates[0], ", ", candidates[1],
                "); pass --labels");
}

std::vector<Segment> read_segments_csv(const std::string& path) {
    return parse_segments_csv(read_text(path, "segment CSV"), path);
}

std::vector<Segment> parse_segments_csv(std::string_view text, const std::string& path) {
    std::istringstream f{std::string(text)};
    std::vector<Segment> out;
    std::string line;
    for (size_t n = 1; std::getline(f, line); ++n) {
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#') continue;  // the 3 comment header lines
        // YTID, start_seconds, end_seconds, "mid1,mid2"   (", " separates the first three fields)
        const size_t a = line.find(", "), b = a == std::string::npos ? a : line.find(", ", a + 2),
                     c = b == std::string::npos ? b : line.find(", ", b + 2);
        AVIARY_CHECK(c != std::string::npos, "'", path, "' line ", n,
                     ": expected 'YTID, start, end, \"mid,mid\"', got '", t, "'");
        Segment s;
        s.ytid = trim(line.substr(0, a));
        AVIARY_CHECK(
            parse_double(line.substr(a + 2, b - a - 2), s.start) && parse_double(line.substr(b + 2, c - b - 2), s.end),
            "'", path, "' line ", n, ": start/end are not numbers in '", t, "'");
        const std::string labels = unquote(line.substr(c + 2));
        std::stringstream ss(labels);
        for (std::string mid; std::getline(ss, mid, ',');)
            if (!trim(mid).empty()) s.mids.push_back(trim(mid));
        AVIARY_CHECK(!s.ytid.empty() && !s.mids.empty(), "'", path, "' line ", n, ": empty YTID or label list");
        out.push_back(std::move(s));
    }
    return out;
}

ClipList read_clip_list(const std::string& data_path, const std::string& clips_dir, const LabelTable& labels) {
    const bool json = is_json_clip_list(data_path);
    if (!json) check_clips_dir(data_path, clips_dir);  // before the CSV is read: the likelier mistake
    return parse_clip_list(read_text(data_path, json ? "AST data JSON" : "segment CSV"), data_path, clips_dir, labels);
}

ClipList parse_clip_list(std::string_view text, const std::string& data_path, const std::string& clips_dir,
                         const LabelTable& labels) {
    ClipList out;
    auto add = [&](const std::string& path, const std::vector<std::string>& mids) {
        ClipItem item;
        item.path = path;
        for (const auto& m : mids) {
            const int64_t i = labels.find(m);
            if (i < 0) {
                ++out.unknown_labels;
                continue;
            }
            item.labels.push_back(i);
        }
        std::error_code ec;
        if (fs::is_regular_file(path, ec))
            out.items.push_back(std::move(item));
        else
            out.missing.push_back(path);
    };
    if (is_json_clip_list(data_path)) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            AVIARY_FAIL("'", data_path, "' is not valid JSON: ", e.what());
        }
        AVIARY_CHECK(j.is_object() && j.contains("data") && j["data"].is_array(), "'", data_path,
                     "': expected {\"data\": [{\"wav\": …, \"labels\": \"mid,mid\"}, …]}");
        const fs::path base = fs::path(data_path).parent_path();
        size_t n = 0;
        for (const auto& e : j["data"]) {
            ++n;
            AVIARY_CHECK(e.is_object() && e.contains("wav") && e["wav"].is_string() && e.contains("labels") &&
                             e["labels"].is_string(),
                         "'", data_path, "' entry ", n, ": expected {\"wav\": string, \"labels\": string}");
            fs::path p = e["wav"].get<std::string>();
            if (p.is_relative()) p = base / p;
            std::vector<std::string> mids;
            std::stringstream ss(e["labels"].get<std::string>());
            for (std::string m; std::getline(ss, m, ',');)
                if (!trim(m).empty()) mids.push_back(trim(m));
            add(p.string(), mids);
        }
    } else {
        check_clips_dir(data_path, clips_dir);
        for (const auto& s : parse_segments_csv(text, data_path))
            add((fs::path(clips_dir) / ("Y" + s.ytid + ".wav")).string(), s.mids);
    }
    return out;
}

ClipFeatures load_clip_features(const ClipList& list, const AudioRwkvConfig& config,
                                const std::function<bool(int64_t, int64_t)>& on_progress) {
    ClipFeatures out;
    const int64_t total = int64_t(list.items.size());
    for (int64_t i = 0; i < total; ++i) {
        const ClipItem& item = list.items[size_t(i)];
        try {
            SoundInfo info;
            const std::vector<float> mono = read_sound_mono(item.path, &info);
            Features f = model_log_mel(config, mono, info.sample_rate, config.clip_samples());  // as the tagger
            out.logmel.push_back(std::move(f.data));
            out.labels.push_back(item.labels);
            out.paths.push_back(item.path);
        } catch (const Error& e) {
            out.failed.push_back(item.path + ": " + e.what());
        }
        if (on_progress && !on_progress(i + 1, total)) break;
    }
    return out;
}

}  // namespace aviary::audio
