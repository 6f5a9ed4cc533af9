// Fuzz target: the music module's JSON readers as `aviary train music` calls them: parse_music_corpus (what
// read_music_corpus calls with the file's text) on an IrishMAN .json array and on a .jsonl ({"text": …} per line), and
// the training config (parse_music_train_config).
#include "aviary/music/abc.h"
#include "aviary/music/music_train.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(music_json) {
    const std::string_view text = aviary::fuzz::as_text(data, size);
    for (const char* name : {"tunes.json", "tunes.jsonl"}) {
        aviary::fuzz::expect_clean([&] {
            const auto tunes = aviary::music::parse_music_corpus(text, name);
            for (const auto& t : tunes) (void)aviary::music::check_abc(t.abc);
        });
    }
    aviary::fuzz::expect_clean([&] { (void)aviary::music::parse_music_train_config(std::string(text), "fuzz"); });
}
