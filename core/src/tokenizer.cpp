// Choosing a tokenizer for a model: World or byte by name, or by the model's vocabulary size ("auto").
#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

namespace aviary {

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, int64_t model_vocab_size,
                                          const std::string& vocab_path) {
    AVIARY_CHECK(kind == "auto" || kind == "world" || kind == "byte", "unknown tokenizer '", kind,
                 "' (expected world, byte or auto)");
    const bool byte = kind == "byte" || (kind == "auto" && model_vocab_size > 0 && model_vocab_size <= 256);
    if (byte) return std::make_unique<ByteTokenizer>();
    auto world = std::make_unique<WorldTokenizer>(
        WorldTokenizer::load(vocab_path.empty() ? WorldTokenizer::default_vocab_path() : vocab_path));
    AVIARY_CHECK(model_vocab_size <= 0 || model_vocab_size >= world->vocab_size(), "the World tokenizer has ",
                 world->vocab_size(), " tokens but the model has ", model_vocab_size,
                 " (a byte-level model? use --tokenizer byte)");
    return world;
}

}  // namespace aviary
