// Fuzz target: the World vocabulary parser (WorldTokenizer::parse, which WorldTokenizer::load calls with the file's
// text; spec §5.1 lines `id 'repr'|b'repr' length`), then encode/decode of a fixed text with whatever vocabulary it
// built (ids it returns must decode without error).
#include "aviary/core/tokenizer.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(vocab) {
    aviary::fuzz::expect_clean([&] {
        const aviary::WorldTokenizer tokenizer =
            aviary::WorldTokenizer::parse(aviary::fuzz::as_text(data, size), "vocab.txt");
        const std::vector<int32_t> ids = tokenizer.encode("Hello, world!\n\xe4\xbd\xa0\xe5\xa5\xbd \x00\xff");
        for (int32_t id : ids)
            if (id < 0 || id >= tokenizer.vocab_size())
                aviary::fuzz::property_failed("vocab", "encode returned id " + std::to_string(id) + " outside 0.." +
                                                           std::to_string(tokenizer.vocab_size() - 1));
        (void)tokenizer.decode(ids);
    });
}
