// Fuzz target: the AudioSet AST-style JSON clip list ({"data": [{"wav", "labels": "mid,mid"}]}) through
// parse_clip_list (what read_clip_list, as `aviary train audio` / `eval audio` read the list, calls with the file's
// text), against the shipped label table; the clips it names are looked up on disk (relative ones in a fresh scratch
// directory: all missing).
#include "aviary/audio/audioset.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(audioset_json) {
    static const aviary::audio::LabelTable labels =
        aviary::audio::read_class_labels(aviary::audio::default_class_labels_path());
    static const std::string list = aviary::fuzz::scratch_dir() + "/clips.json";
    aviary::fuzz::expect_clean(
        [&] { (void)aviary::audio::parse_clip_list(aviary::fuzz::as_text(data, size), list, "", labels); });
}
