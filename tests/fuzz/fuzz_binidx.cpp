// Fuzz target: binidx training data (RWKV-LM MMIDIDX .idx + the flat .bin token stream) and its tokenizer record
// (PREFIX.tokenizer.json): open_binidx and every token read back, then open_token_source with the byte encoder, as
// `aviary train text --tokenizer byte` / `eval text` open a corpus. Input: idx [SEP bin [SEP record]].
#include <ATen/core/Tensor.h>

#include <filesystem>

#include "aviary/core/train_data.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(binidx) {
    static const aviary::TextEncoder encoder = aviary::make_text_encoder("byte");
    const auto parts = aviary::fuzz::split_parts(data, size, 3);
    const std::string prefix = aviary::fuzz::scratch_dir() + "/data";
    aviary::fuzz::write_file("data.idx", parts[0]);
    aviary::fuzz::write_file("data.bin", parts.size() > 1 ? parts[1] : std::string_view("\x05\x00\x06\x00\x00\x00", 6));
    std::error_code ec;
    if (parts.size() > 2)
        aviary::fuzz::write_file("data.tokenizer.json", parts[2]);
    else
        std::filesystem::remove(aviary::binidx_tokenizer_record_path(prefix), ec);
    aviary::fuzz::expect_clean([&] {
        const auto source = aviary::open_binidx(prefix);
        std::vector<int64_t> buf(4096);
        const int64_t n = std::min<int64_t>(source->size(), 1 << 20);
        for (int64_t at = 0; at < n; at += int64_t(buf.size()))
            source->read(at, std::min<int64_t>(int64_t(buf.size()), n - at), buf.data());
        (void)source->max_token();
        (void)source->describe();
    });
    aviary::fuzz::expect_clean([&] { (void)aviary::open_token_source(prefix + ".idx", encoder); });
}
