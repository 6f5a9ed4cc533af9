// Text corpora for training (train_data.h): JSONL {"text": …}, plain-text files
// and directories, tokenized with the World or byte tokenizer into an in-memory
// token stream (0 after every document, as RWKV-LM's json2binidx does), and the
// encoder factory shared with `aviary data build`.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "aviary/core/tokenizer.h"
#include "aviary/core/train_data.h"

namespace aviary {
namespace fs = std::filesystem;
namespace {

class MemorySource : public TokenSource {
public:
    MemorySource(std::vector<int32_t> tokens, std::string name) : tokens_(std::move(tokens)), name_(std::move(name)) {
        for (int32_t t : tokens_) max_ = std::max<int64_t>(max_, t);
    }
    int64_t size() const override { return static_cast<int64_t>(tokens_.size()); }
    void read(int64_t offset, int64_t count, int64_t* out) const override {
        AVIARY_CHECK(offset >= 0 && count >= 0 && offset + count <= size(), "read past the end of ", name_);
        for (int64_t i = 0; i < count; ++i) out[i] = tokens_[size_t(offset + i)];
    }
    int64_t max_token() const override { return max_; }
    std::string describe() const override { return name_ + " (" + std::to_string(tokens_.size()) + " tokens)"; }

private:
    std::vector<int32_t> tokens_;
    std::string name_;
    int64_t max_ = 0;
};

std::string read_text_file(const fs::path& p) {
    std::string s;
    AVIARY_CHECK(read_whole_file(p.string(), s), "cannot read '", p.string(), "'");
    return s;
}

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

TextEncoder make_text_encoder(const std::string& kind, const std::string& vocab_path) {
    TextEncoder e;
    e.kind = kind;
    if (kind == "byte") {
        e.vocab_size = 256;
        e.encode = [](std::string_view text) { return ByteTokenizer().encode(text); };
        e.byte_length = [](int64_t id) -> int64_t { return id == 0 ? 0 : 1; };
    } else if (kind == "world") {
        auto tok = std::make_shared<WorldTokenizer>(
            WorldTokenizer::load(vocab_path.empty() ? WorldTokenizer::default_vocab_path() : vocab_path));
        e.vocab_size = 65536;  // World models have V = 65536 (the vocabulary uses ids < 65530)
        e.encode = [tok](std::string_view text) { return tok->encode(text); };
        e.byte_length = [tok](int64_t id) -> int64_t {
            return id <= 0 || id >= tok->vocab_size() ? 0 : int64_t(tok->token_bytes(int32_t(id)).size());
        };
    } else {
        AVIARY_FAIL("unknown tokenizer '", kind, "' (expected world or byte)");
    }
    return e;
}

void for_each_document(const std::string& path, const std::function<void(std::string_view)>& on_document,
                       const std::function<bool(uint64_t, uint64_t)>& on_progress) {
    std::error_code ec;
    AVIARY_CHECK(fs::exists(path, ec), "training data '", path, "' does not exist");
    auto progress = [&](uint64_t done, uint64_t total) {
        if (on_progress && !on_progress(done, total)) AVIARY_FAIL("cancelled");
    };
    if (fs::is_directory(path)) {
        std::vector<fs::path> files;
        for (const auto& entry : fs::recursive_directory_iterator(path))
            if (entry.is_regular_file()) files.push_back(entry.path());
        std::sort(files.begin(), files.end());
        AVIARY_CHECK(!files.empty(), "training data directory '", path, "' holds no files");
        uint64_t total = 0, done = 0;
        for (const auto& f : files) total += fs::file_size(f);
        for (const auto& f : files) {
            const std::string text = read_text_file(f);
            on_document(text);
            done += text.size();
            progress(done, total);
        }
        return;
    }
    const std::string text = read_text_file(path);
    if (!ends_with(path, ".jsonl")) {
        on_document(text);
        progress(text.size(), text.size());
        return;
    }
    size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        ++line_no;
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                                 /*allow_exceptions=*/false);
        AVIARY_CHECK(!j.is_discarded(), "'", path, "' line ", line_no, ": not valid JSON");
        AVIARY_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), "'", path, "' line ", line_no,
                     ": expected an object with a string field \"text\"");
        on_document(j["text"].get_ref<const std::string&>());
        progress(std::min<uint64_t>(pos, text.size()), text.size());
    }
}

std::unique_ptr<TokenSource> make_memory_source(std::vector<int32_t> tokens, std::string name) {
    return std::make_unique<MemorySource>(std::move(tokens), std::move(name));
}

void check_binidx_tokenizer(const std::string& prefix, const TokenSource& data, const TextEncoder& encoder,
                            const std::string* record) {
    const std::string record_path = binidx_tokenizer_record_path(prefix);
    if (record == nullptr) {
        AVIARY_CHECK(data.max_token() < encoder.vocab_size, "'", prefix, "' holds token id ", data.max_token(),
                     ", outside the ", encoder.kind, " tokenizer's ", encoder.vocab_size,
                     " ids: it was tokenized another way (pass --tokenizer world|byte to match it)");
        return;
    }
    const nlohmann::json j = nlohmann::json::parse(*record, nullptr, /*allow_exceptions=*/false);
    // (j["format"] == string: false for a field of another type; value("format", "") would throw a type_error)
    AVIARY_CHECK(j.is_object() && j.contains("format") && j["format"] == "aviary-binidx-tokenizer" &&
                     j.contains("tokenizer") && j["tokenizer"].is_string() && j.contains("vocab_size") &&
                     j["vocab_size"].is_number_integer(),
                 "'", record_path,
                 "': expected {\"format\": \"aviary-binidx-tokenizer\", \"tokenizer\": …, "
                 "\"vocab_size\": …}");
    const std::string kind = j["tokenizer"].get<std::string>();
    const int64_t vocab = j["vocab_size"].get<int64_t>();
    AVIARY_CHECK(kind == encoder.kind && vocab == encoder.vocab_size, "'", prefix, "' was tokenized with the ", kind,
                 " tokenizer (", vocab, " ids; ", record_path, ") but this run uses the ", encoder.kind, " tokenizer (",
                 encoder.vocab_size, " ids): pass --tokenizer ", kind, " with a model of that vocabulary");
}

std::unique_ptr<TokenSource> open_token_source(const std::string& path, const TextEncoder& encoder) {
    if (is_binidx(path)) {
        auto data = open_binidx(path);
        const std::string prefix = binidx_prefix(path);
        std::string record;
        const bool recorded = read_whole_file(binidx_tokenizer_record_path(prefix), record);
        check_binidx_tokenizer(prefix, *data, encoder, recorded ? &record : nullptr);
        return data;
    }
    AVIARY_CHECK(!ends_with(path, ".idx") && !ends_with(path, ".bin"), "binidx file '", path,
                 "' is incomplete: both PREFIX.bin and PREFIX.idx are needed");
    std::vector<int32_t> tokens;
    for_each_document(path, [&](std::string_view text) {
        std::vector<int32_t> ids = encoder.encode(text);
        tokens.insert(tokens.end(), ids.begin(), ids.end());
        tokens.push_back(0);  // end of document
    });
    return make_memory_source(std::move(tokens), path);
}

}  // namespace aviary
