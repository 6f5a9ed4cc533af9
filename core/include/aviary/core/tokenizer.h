// Tokenizers: the RWKV World tokenizer (greedy longest byte match over rwkv_vocab_v20230424, spec §5)
// and the byte tokenizer of byte-level models (the ABC music models: character codes; BOS 2, EOS 3; spec §5.4),
// both behind one interface that generation (generator.h) works with.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

// What generation needs of a tokenizer: text -> ids, the bytes of one id, the vocabulary size, the end ids.
class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    virtual std::string kind() const = 0;  // "world" | "byte"
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    // The bytes one id stands for ("" for control ids such as end of text); ids outside the vocabulary are an error.
    virtual const std::string& token_bytes(int32_t id) const = 0;
    virtual int32_t vocab_size() const = 0;
    // Ids that end a generated text (World: 0; byte: 0 and EOS 3, as ChatRWKV music/run.py stops at 3).
    virtual bool is_end(int32_t id) const = 0;
};

class WorldTokenizer final : public Tokenizer {
public:
    WorldTokenizer();
    ~WorldTokenizer();
    WorldTokenizer(WorldTokenizer&&) noexcept;
    WorldTokenizer& operator=(WorldTokenizer&&) noexcept;

    // Parses the vocabulary file (format of spec §5.1; CRLF tolerated); errors name the line.
    static WorldTokenizer load(const std::string& vocab_path);
    // The vocabulary text already in memory, parsed exactly as load() parses a file holding it (load reads the file
    // and calls this); errors name `vocab_path` where they would name the file.
    static WorldTokenizer parse(std::string_view text, const std::string& vocab_path);
    // Where the vocabulary is looked for when none is given: $AVIARY_VOCAB, then the installed
    // share/aviary/rwkv_vocab_v20230424.txt, then assets/ of the source tree. Throws with set-up advice.
    static std::string default_vocab_path();

    std::string kind() const override { return "world"; }
    std::vector<int32_t> encode(std::string_view text) const override;
    // Concatenated token bytes (may be invalid UTF-8 for partial sequences). Id 0 decodes to "";
    // ids outside the vocabulary are an error.
    std::string decode(const std::vector<int32_t>& ids) const;
    const std::string& token_bytes(int32_t id) const override;
    int32_t vocab_size() const override;  // largest id + 1 (65530 for the World vocabulary)
    bool is_end(int32_t id) const override { return id == 0; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class ByteTokenizer final : public Tokenizer {
public:
    static constexpr int32_t kPad = 0;
    static constexpr int32_t kBos = 2;
    static constexpr int32_t kEos = 3;
    std::string kind() const override { return "byte"; }
    std::vector<int32_t> encode(std::string_view text) const override;  // one id per byte
    std::string decode(const std::vector<int32_t>& ids) const;          // drops ids <= 3
    // The byte itself for ids 4..255; "" for the control ids 0..3. Ids outside 0..255 are an error.
    const std::string& token_bytes(int32_t id) const override;
    int32_t vocab_size() const override { return 256; }
    bool is_end(int32_t id) const override { return id == 0 || id == kEos; }
};

// The tokenizer for a model: kind "world", "byte" or "auto" (byte for vocabularies of at most 256 ids, else World);
// vocab_path "" = WorldTokenizer::default_vocab_path(). A World tokenizer for a byte-level model (at most 256 ids) is
// an error naming both sizes (and suggesting the byte tokenizer); a model with more ids but fewer than the vocabulary
// (small test models) takes it — generate() refuses prompt ids beyond the model. An unknown kind is an error.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, int64_t model_vocab_size,
                                          const std::string& vocab_path = "");

// Length of the longest prefix of `s` that is complete, valid UTF-8 (for streaming output).
size_t utf8_valid_prefix(std::string_view s);

// True when `s` is the start of a valid multi-byte UTF-8 sequence that more bytes could complete (streaming
// output waits for them); false for complete, ASCII-led or never-valid input.
bool utf8_can_complete(std::string_view s);

}  // namespace aviary
