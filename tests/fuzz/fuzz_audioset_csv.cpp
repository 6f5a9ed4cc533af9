// Fuzz target: the AudioSet CSV readers (audio/src/audioset_readers.cpp) on the file's text, as the path functions call
// them: parse_class_labels (class_labels_indices.csv, index,mid,name, as `aviary tag --labels` reads it) and a segment
// CSV (YTID, start, end, "mid,…") through parse_clip_list (read_clip_list, as `aviary train audio` / `eval audio` read
// it) against the shipped label table and an empty clip folder (each clip is looked up there: all missing).
#include "aviary/audio/audioset.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(audioset_csv) {
    static const aviary::audio::LabelTable labels =
        aviary::audio::read_class_labels(aviary::audio::default_class_labels_path());
    static const std::string clips = [] {
        const std::string dir = aviary::fuzz::scratch_dir() + "/clips";
        std::filesystem::create_directories(dir);
        return dir;
    }();
    const std::string_view text = aviary::fuzz::as_text(data, size);
    aviary::fuzz::expect_clean([&] {
        const aviary::audio::LabelTable table = aviary::audio::parse_class_labels(text, "labels.csv");
        for (const auto& c : table.classes) (void)table.find(c.mid);
    });
    aviary::fuzz::expect_clean([&] { (void)aviary::audio::parse_clip_list(text, "segments.csv", clips, labels); });
}
