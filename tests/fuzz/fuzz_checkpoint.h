// The body of the two checkpoint harnesses (fuzz_pth.cpp, fuzz_safetensors.cpp): both go through read_checkpoint, the
// entry every loader uses, which picks the reader by content; they differ in their seeds (and so their corpora).
#pragma once
#include "aviary/core/checkpoint.h"
#include "fuzz_common.h"

namespace aviary::fuzz {

inline void read_checkpoint_input(const char* file_name, const uint8_t* data, size_t size) {
    const std::string path = write_file(file_name, as_text(data, size));
    expect_clean([&] {
        Metadata metadata;
        const TensorList tensors = read_checkpoint(path, &metadata);
        for (const auto& t : tensors) (void)t.tensor.numel();
    });
}

}  // namespace aviary::fuzz
