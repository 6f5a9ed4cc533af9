// Fuzz target: official .pth files (core zip reader + restricted unpickler) through read_checkpoint, the entry every
// loader (Model::load, VisualRwkv::load, AudioRwkv::load, convert, info) uses; it picks the .pth reader by the zip
// magic.
#include "fuzz_checkpoint.h"

AVIARY_FUZZ_TARGET(pth) {
    aviary::fuzz::read_checkpoint_input("model.pth", data, size);
}
