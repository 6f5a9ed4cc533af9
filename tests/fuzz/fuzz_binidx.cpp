// Fuzz target: binidx training data (RWKV-LM MMIDIDX .idx + the flat .bin token stream) and its tokenizer record
// (PREFIX.tokenizer.json): open_binidx_bytes (the index parser and token stream open_binidx uses on the files) and
// every token read back, then check_binidx_tokenizer with the byte encoder, the check open_token_source makes when
// `aviary train text --tokenizer byte` / `eval text` open a corpus. Input: idx [SEP bin [SEP record]].
#include <ATen/core/Tensor.h>

#include "aviary/core/train_data.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(binidx) {
    static const aviary::TextEncoder encoder = aviary::make_text_encoder("byte");
    const auto parts = aviary::fuzz::split_parts(data, size, 3);
    const std::string bin(parts.size() > 1 ? parts[1] : std::string_view("\x05\x00\x06\x00\x00\x00", 6));
    const std::string record(parts.size() > 2 ? parts[2] : std::string_view());
    aviary::fuzz::expect_clean([&] {
        const auto source = aviary::open_binidx_bytes(parts[0], bin, "data");
        std::vector<int64_t> buf(4096);
        const int64_t n = std::min<int64_t>(source->size(), 1 << 20);
        for (int64_t at = 0; at < n; at += int64_t(buf.size()))
            source->read(at, std::min<int64_t>(int64_t(buf.size()), n - at), buf.data());
        (void)source->max_token();
        (void)source->describe();
        aviary::check_binidx_tokenizer("data", *source, encoder, parts.size() > 2 ? &record : nullptr);
    });
}
