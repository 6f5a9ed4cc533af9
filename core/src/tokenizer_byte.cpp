// Byte tokenizer of the ABC music model (RWKV-5-ABC-82M; spec §5.4, ChatRWKV music/run.py @ef8ed46):
// one id per byte (ABC text is ASCII, so ord(c) per character equals one id per byte), pad 0, BOS 2, EOS 3;
// decoding drops the control ids ≤ 3.
#include <array>

#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

namespace aviary {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
        // Ids above 255 cannot come from encode(); keep the low byte rather than fail mid-stream.
        if (id > kEos) out += static_cast<char>(id & 0xFF);
    }
    return out;
}

const std::string& ByteTokenizer::token_bytes(int32_t id) const {
    static const std::array<std::string, 256> table = [] {
        std::array<std::string, 256> t;
        for (int i = kEos + 1; i < 256; ++i) t[size_t(i)] = std::string(1, static_cast<char>(i));
        return t;
    }();
    AVIARY_CHECK(id >= 0 && id < 256, "token id ", id, " is out of range for the byte tokenizer (0..255)");
    return table[size_t(id)];
}

}  // namespace aviary
