// Fuzz target: aviary-studio scripts (`--script FILE`: one command per line) through parse_script, the parser the
// scripted mode runs before any frame (apps/studio/script.cpp, in the GL-free aviary_studio_files).
#include "fuzz_common.h"
#include "script.h"

AVIARY_FUZZ_TARGET(studio_script) {
    aviary::fuzz::expect_clean(
        [&] { (void)aviary::studio::parse_script(std::string(aviary::fuzz::as_text(data, size))); });
}
