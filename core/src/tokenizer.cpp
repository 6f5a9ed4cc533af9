// Choosing a tokenizer for a model: World or byte by name, or by the model's vocabulary size ("auto").
#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

namespace aviary {

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, int64_t model_vocab_size,
                                          const std::string& vocab_path) {
    AVIARY_CHECK(kind == "auto" || kind == "world" || kind == "byte", "unknown tokenizer '", kind,
                 "' (expected world, byte or auto)");
    constexpr int64_t kByteVocabulary = 256;
    const bool byte = kind == "byte" || (kind == "auto" && model_vocab_size > 0 && model_vocab_size <= kByteVocabulary);
    if (byte) return std::make_unique<ByteTokenizer>();
    auto world = std::make_unique<WorldTokenizer>(
        WorldTokenizer::load(vocab_path.empty() ? WorldTokenizer::default_vocab_path() : vocab_path));
    // A byte-level model (the vocabularies "auto" gives the byte tokenizer) cannot take World ids. A larger model with
    // fewer ids than the vocabulary (small test and research models) can: its samples are ids it has, and a prompt id
    // beyond it is refused by generate().
    AVIARY_CHECK(model_vocab_size <= 0 || model_vocab_size > kByteVocabulary, "the World tokenizer has ",
                 world->vocab_size(), " tokens but the model has ", model_vocab_size,
                 " (a byte-level model? use --tokenizer byte)");
    return world;
}

}  // namespace aviary
