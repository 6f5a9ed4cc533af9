// Fuzz target: the ABC reader and checker (music module) as `aviary train music` reads a .abc corpus:
// parse_music_corpus (what read_music_corpus calls with the file's text: the collection split at X: lines), then per
// tune check_abc and the byte framing the trainer uses (frame_tunes_as_tokens), and to_abc_file_text / encode_abc as
// the music exporter applies them to generated text.
#include "aviary/music/abc.h"
#include "aviary/music/music_train.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(abc) {
    const std::string_view text = aviary::fuzz::as_text(data, size);
    aviary::fuzz::expect_clean([&] {
        const auto tunes = aviary::music::parse_music_corpus(text, "tunes.abc");
        for (const auto& t : tunes) (void)aviary::music::check_abc(t.abc);
        (void)aviary::music::frame_tunes_as_tokens(tunes);
    });
    (void)aviary::music::check_abc(text);
    const std::string file_text = aviary::music::to_abc_file_text(text);
    aviary::fuzz::expect_clean([&] { (void)aviary::music::encode_abc(file_text); });
}
