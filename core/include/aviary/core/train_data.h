// Training data: token streams from RWKV-LM/Megatron binidx files (.bin + .idx,
// read by memory mapping), JSONL ({"text": …}) and plain-text files or
// directories (tokenized in memory, 0 after every document), a binidx writer
// (format of RWKV-LM RWKV-v5/src/binidx.py, MMapIndexedDataset.Index), and a
// seeded sampler of (ctx_len + 1)-token windows whose order depends only on
// (seed, position): resumable bit-exactly.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

// Text -> token ids: "world" (WorldTokenizer, vocabulary file) or "byte" (one
// id per byte, 256 ids).
struct TextEncoder {
    std::string kind;  // "world" or "byte"
    int32_t vocab_size = 0;
    std::function<std::vector<int32_t>(std::string_view)> encode;
    std::function<int64_t(int64_t)> byte_length;  // bytes of text a token stands for (0 for the separator 0)
};
// vocab_path is used by "world" (empty: WorldTokenizer::default_vocab_path()).
TextEncoder make_text_encoder(const std::string& kind, const std::string& vocab_path = "");

// A read-only stream of token ids: the documents concatenated, each followed by
// 0.
class TokenSource {
public:
    virtual ~TokenSource() = default;
    virtual int64_t size() const = 0;  // tokens
    // Copies tokens [offset, offset + count) to out; bounds are checked.
    virtual void read(int64_t offset, int64_t count, int64_t* out) const = 0;
    virtual int64_t max_token() const = 0;  // largest id in the stream (computed once)
    virtual std::string describe() const = 0;
};

// binidx: the prefix names PREFIX.idx and PREFIX.bin (a path ending in .idx or
// .bin is accepted too). Header: "MMIDIDX\0\0", u64 version 1, u8 dtype code (1
// u8, 4 i32, 8 u16 accepted), u64 n_sequences, u64 n_doc_idx, then i32
// sizes[n], i64 byte pointers[n], i64 doc_idx[n_doc_idx]. Like the official
// reader, the .bin is used as one flat token stream. Truncated or inconsistent
// files are errors naming the file.
std::unique_ptr<TokenSource> open_binidx(const std::string& prefix);
// The .idx and .bin bytes already in memory, checked and read exactly as
// open_binidx checks and reads files holding them (one parser); errors name
// PREFIX.idx and PREFIX.bin where they would name the files.
std::unique_ptr<TokenSource> open_binidx_bytes(std::string_view idx, std::string bin, const std::string& prefix);
bool is_binidx(const std::string& path);
std::string binidx_prefix(const std::string& path);

// Calls on_document(text) for each document of a text corpus, in a fixed order:
// a .jsonl file (one
// {"text": …} object per non-empty line), a directory (every regular file below
// it, sorted by path, one document per file), or any other file (one document).
// on_progress(bytes_done, bytes_total) may return false to stop (then an Error
// "cancelled" is thrown).
void for_each_document(const std::string& path, const std::function<void(std::string_view)>& on_document,
                       const std::function<bool(uint64_t, uint64_t)>& on_progress = {});

// Any corpus: binidx when PATH(.idx) exists, otherwise a text corpus tokenized
// in memory with `encoder`. A binidx must have been tokenized the way `encoder`
// tokenizes: its record PREFIX.tokenizer.json (written by build_binidx) must
// name the same tokenizer and vocabulary size; one without a record (RWKV-LM's
// own files) must at least hold no id outside the encoder's vocabulary. A
// mismatch is an error naming the file, both tokenizers and the fix.
std::unique_ptr<TokenSource> open_token_source(const std::string& path, const TextEncoder& encoder);
// The record of how a binidx was tokenized: PREFIX.tokenizer.json, {"format":
// "aviary-binidx-tokenizer", "tokenizer": kind, "vocab_size": n}.
std::string binidx_tokenizer_record_path(const std::string& prefix);
// The check open_token_source makes of a binidx `data` at `prefix` against
// `encoder`: `record` is the text of its PREFIX.tokenizer.json (nullptr: it has
// none, and then no id may lie outside the encoder's vocabulary).
void check_binidx_tokenizer(const std::string& prefix, const TokenSource& data, const TextEncoder& encoder,
                            const std::string* record);
// A stream over given tokens (tests, small data).
std::unique_ptr<TokenSource> make_memory_source(std::vector<int32_t> tokens, std::string name = "memory");

struct BinIdxBuildStats {
    int64_t documents = 0;
    int64_t tokens = 0;
    uint64_t bytes = 0;
};
// Tokenizes a text corpus into PREFIX.bin / PREFIX.idx (uint16 tokens when the
// vocabulary fits, else int32), one sequence per document with 0 appended,
// doc_idx = 0..n, and the tokenizer record PREFIX.tokenizer.json. The files
// are written to temporaries and renamed only when complete.
BinIdxBuildStats build_binidx(const std::string& corpus, const std::string& out_prefix, const TextEncoder& encoder,
                              const std::function<bool(uint64_t, uint64_t)>& on_progress = {});

// Windows of ctx_len + 1 tokens (inputs = first ctx_len, targets = last
// ctx_len). Epoch e uses the start offsets shift_e + k·ctx_len (k <
// windows_per_epoch) in an order shuffled by (seed, e); sample index i belongs
// to epoch i / windows_per_epoch. Everything is a function of (seed, i): no
// hidden state to save.
class WindowSampler {
public:
    WindowSampler(const TokenSource& source, int64_t ctx_len, uint64_t seed);
    int64_t windows_per_epoch() const { return per_epoch_; }
    int64_t window_start(int64_t index) const;
    // (count, ctx_len + 1) int64 tokens of samples [index, index + count).
    at::Tensor windows(int64_t index, int64_t count) const;

private:
    const TokenSource& source_;
    int64_t ctx_len_, per_epoch_;
    uint64_t seed_;
    mutable int64_t cached_epoch_ = -1;
    mutable std::vector<int64_t> order_;
    mutable int64_t shift_ = 0;
};

}  // namespace aviary
