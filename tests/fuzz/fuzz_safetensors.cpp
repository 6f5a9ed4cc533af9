// Fuzz target: safetensors (8-byte header length, JSON header, tensor offsets and bounds, __metadata__) through
// read_checkpoint, the loaders' entry (a file without the zip magic goes to the safetensors reader).
#include "aviary/core/checkpoint.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(safetensors) {
    const std::string path = aviary::fuzz::write_file("model.safetensors", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] {
        aviary::Metadata metadata;
        const aviary::TensorList tensors = aviary::read_checkpoint(path, &metadata);
        for (const auto& t : tensors) (void)t.tensor.numel();
    });
}
