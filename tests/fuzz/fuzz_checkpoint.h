// The body of the two checkpoint harnesses (fuzz_pth.cpp, fuzz_safetensors.cpp): both go through read_checkpoint_bytes,
// the same sniffer and readers as read_checkpoint (the entry every loader uses, which maps the file and picks the
// reader by content), on libFuzzer's own heap buffer of exactly the input's size: no file per input, and ASan sees a
// read past the end (a mapped file's last page would hide it). They differ in their seeds (and so their corpora).
#pragma once
#include "aviary/core/checkpoint.h"
#include "fuzz_common.h"

namespace aviary::fuzz {

inline void read_checkpoint_input(const char* file_name, const uint8_t* data, size_t size) {
    expect_clean([&] {
        Metadata metadata;
        const TensorList tensors = read_checkpoint_bytes(data, size, file_name, &metadata);
        for (const auto& t : tensors) (void)t.tensor.numel();
    });
}

}  // namespace aviary::fuzz
