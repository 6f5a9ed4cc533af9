// Fuzz target: the AudioSet AST-style JSON clip list ({"data": [{"wav", "labels": "mid,mid"}]}) through
// read_clip_list, as `aviary train audio` / `eval audio` read it, against the shipped label table.
#include "aviary/audio/audioset.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(audioset_json) {
    static const aviary::audio::LabelTable labels =
        aviary::audio::read_class_labels(aviary::audio::default_class_labels_path());
    const std::string path = aviary::fuzz::write_file("clips.json", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] { (void)aviary::audio::read_clip_list(path, "", labels); });
}
