// Fuzz target: World tokenizer on arbitrary bytes with the official vocabulary (WorldTokenizer::default_vocab_path:
// $AVIARY_VOCAB, installed, assets/vocab). Property: decode(encode(x)) == x for every byte string (the vocabulary
// holds all 256 single bytes, so greedy longest match always succeeds), and every id is inside the vocabulary.
#include "aviary/core/tokenizer.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(tokenizer_world) {
    static const aviary::WorldTokenizer tokenizer =
        aviary::WorldTokenizer::load(aviary::WorldTokenizer::default_vocab_path());
    const std::string_view text = aviary::fuzz::as_text(data, size);
    const std::vector<int32_t> ids = tokenizer.encode(text);
    for (int32_t id : ids)
        if (id <= 0 || id >= tokenizer.vocab_size())
            aviary::fuzz::property_failed("tokenizer_world", "encode gave id " + std::to_string(id));
    if (tokenizer.decode(ids) != text) aviary::fuzz::property_failed("tokenizer_world", "decode(encode(x)) != x");
}
