// Fuzz target: byte tokenizer (ABC music models) on arbitrary bytes. Property: decode(encode(x)) == x with the control
// bytes 0..3 removed (ids <= 3 are pad/BOS/EOS framing, which decode drops by contract: tokenizer.h), so x == itself
// for every text without them; token_bytes agrees with decode id by id.
#include "aviary/core/tokenizer.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(tokenizer_byte) {
    const aviary::ByteTokenizer tokenizer;
    const std::string_view text = aviary::fuzz::as_text(data, size);
    const std::vector<int32_t> ids = tokenizer.encode(text);
    if (ids.size() != text.size()) aviary::fuzz::property_failed("tokenizer_byte", "not one id per byte");
    std::string expected, joined;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (ids[i] != byte) aviary::fuzz::property_failed("tokenizer_byte", "id is not the byte");
        if (byte > 3) expected.push_back(text[i]);
        joined += tokenizer.token_bytes(ids[i]);
    }
    const std::string decoded = tokenizer.decode(ids);
    if (decoded != expected || joined != expected)
        aviary::fuzz::property_failed("tokenizer_byte", "decode(encode(x)) != x without the control bytes");
}
