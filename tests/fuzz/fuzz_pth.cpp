// Fuzz target: official .pth files (core zip reader + restricted unpickler) through read_checkpoint, the entry every
// loader (Model::load, VisualRwkv::load, AudioRwkv::load, convert, info) uses; it picks the .pth reader by the zip magic.
#include "aviary/core/checkpoint.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(pth) {
    const std::string path = aviary::fuzz::write_file("model.pth", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] {
        aviary::Metadata metadata;
        const aviary::TensorList tensors = aviary::read_checkpoint(path, &metadata);
        for (const auto& t : tensors) (void)t.tensor.numel();
    });
}
