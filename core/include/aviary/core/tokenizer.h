// Tokenizers: the RWKV World tokenizer (greedy longest byte match over rwkv_vocab_v20230424, spec §5)
// and the byte tokenizer of the ABC music models (character codes; BOS 2, EOS 3; spec §5.4).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

class WorldTokenizer {
public:
    WorldTokenizer();
    ~WorldTokenizer();
    WorldTokenizer(WorldTokenizer&&) noexcept;
    WorldTokenizer& operator=(WorldTokenizer&&) noexcept;

    // Parses the vocabulary file (format of spec §5.1; CRLF tolerated); errors name the line.
    static WorldTokenizer load(const std::string& vocab_path);
    // Where the vocabulary is looked for when none is given: $AVIARY_VOCAB, then the installed
    // share/aviary/rwkv_vocab_v20230424.txt, then assets/ of the source tree. Throws with set-up advice.
    static std::string default_vocab_path();

    std::vector<int32_t> encode(std::string_view text) const;
    // Concatenated token bytes (may be invalid UTF-8 for partial sequences). Id 0 decodes to "";
    // ids outside the vocabulary are an error.
    std::string decode(const std::vector<int32_t>& ids) const;
    const std::string& token_bytes(int32_t id) const;
    int32_t vocab_size() const;  // largest id + 1 (65530 for the World vocabulary)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class ByteTokenizer {
public:
    static constexpr int32_t kPad = 0;
    static constexpr int32_t kBos = 2;
    static constexpr int32_t kEos = 3;
    std::vector<int32_t> encode(std::string_view text) const;      // one id per byte
    std::string decode(const std::vector<int32_t>& ids) const;     // drops ids <= 3
};

// Length of the longest prefix of `s` that is complete, valid UTF-8 (for streaming output).
size_t utf8_valid_prefix(std::string_view s);

// True when `s` is the start of a valid multi-byte UTF-8 sequence that more bytes could complete (streaming
// output waits for them); false for complete, ASCII-led or never-valid input.
bool utf8_can_complete(std::string_view s);

}  // namespace aviary
