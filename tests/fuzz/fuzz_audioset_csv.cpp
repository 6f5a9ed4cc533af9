// Fuzz target: the AudioSet CSV readers (audio/src/audioset_readers.cpp): class_labels_indices.csv (index,mid,name)
// as `aviary tag --labels` reads it, and a segment CSV (YTID, start, end, "mid,…") through read_clip_list, as
// `aviary train audio` / `eval audio` read it against the shipped label table and a clip folder.
#include "aviary/audio/audioset.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(audioset_csv) {
    static const aviary::audio::LabelTable labels =
        aviary::audio::read_class_labels(aviary::audio::default_class_labels_path());
    const std::string path = aviary::fuzz::write_file("segments.csv", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] {
        const aviary::audio::LabelTable table = aviary::audio::read_class_labels(path);
        for (const auto& c : table.classes) (void)table.find(c.mid);
    });
    aviary::fuzz::expect_clean(
        [&] { (void)aviary::audio::read_clip_list(path, aviary::fuzz::scratch_dir() + "/clips", labels); });
}
