// AudioSet metadata and local data sets (../shared/reference/multimodal_spec.md B.5): class_labels_indices.csv
// (index,mid,display_name), segment CSVs (3 comment lines; `YTID, start, end, "mid,mid"` with ", " separators),
// a directory of local clips named Y{YTID}.wav, and the AST JSON list {"data": [{"wav": …, "labels": "mid,mid"}]}.
// Missing clips are counted and reported, never fatal.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "aviary/audio/audio_rwkv.h"

namespace aviary::audio {

struct LabelTable {
    std::vector<ClassLabel> classes;             // by index
    std::map<std::string, int64_t> index;        // mid -> index
    int64_t find(const std::string& mid) const;  // −1 when unknown
};
LabelTable read_class_labels(const std::string& path);
// The same for the file's text already in memory (read_class_labels reads the file and calls this); errors name `path`.
LabelTable parse_class_labels(std::string_view text, const std::string& path);
// assets/audio/class_labels_indices.csv: $AVIARY_AUDIO_LABELS, the install share dir, then the source tree.
std::string default_class_labels_path();
LabelTable label_table(const std::vector<ClassLabel>& classes);

struct Segment {
    std::string ytid;
    double start = 0, end = 0;
    std::vector<std::string> mids;
};
std::vector<Segment> read_segments_csv(const std::string& path);
std::vector<Segment> parse_segments_csv(std::string_view text, const std::string& path);  // the file's text, as above

struct ClipItem {
    std::string path;
    std::vector<int64_t> labels;  // class indices
};
struct ClipList {
    std::vector<ClipItem> items;       // clips found on disk
    std::vector<std::string> missing;  // listed but absent (paths)
    int64_t unknown_labels = 0;        // label MIDs not in the class table (ignored)
};
// Segment CSV + clip directory (Y{YTID}.wav) or AST JSON (paths as written; relative ones against the JSON's
// directory). `clips_dir` is needed for CSVs; the kind is chosen by the extension (.csv / .json).
ClipList read_clip_list(const std::string& data_path, const std::string& clips_dir, const LabelTable& labels);
// The same for the list's text already in memory (read_clip_list reads `data_path` and calls this): the kind follows
// the extension of `data_path`, relative JSON paths are taken against its directory, errors name it; the clips
// themselves are still looked up on disk.
ClipList parse_clip_list(std::string_view text, const std::string& data_path, const std::string& clips_dir,
                         const LabelTable& labels);

// Log-mel features of every clip of a list, loaded once (B, frames, mels) fp32 plus targets (B, n_classes).
struct ClipFeatures {
    std::vector<std::vector<float>> logmel;  // frames × mels each
    std::vector<std::vector<int64_t>> labels;
    std::vector<std::string> paths;
    std::vector<std::string> failed;  // unreadable clips: "path: reason"
};
ClipFeatures load_clip_features(const ClipList& list, const AudioRwkvConfig& config,
                                const std::function<bool(int64_t, int64_t)>& on_progress = {});

}  // namespace aviary::audio
