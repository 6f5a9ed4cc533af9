// Fuzz target: safetensors (8-byte header length, JSON header, tensor offsets and bounds, __metadata__) through
// read_checkpoint, the loaders' entry (a file without the zip magic goes to the safetensors reader).
#include "fuzz_checkpoint.h"

AVIARY_FUZZ_TARGET(safetensors) {
    aviary::fuzz::read_checkpoint_input("model.safetensors", data, size);
}
