// Internal: the checkpoint readers on a MappedFile (zip_reader.h), a mapped file or a view of bytes in memory. The
// public path functions (checkpoint.h) map the file and call these; read_checkpoint_bytes wraps the caller's bytes.
// One reader per format either way: errors name file.path() (the file, or the name given with the bytes).
#pragma once
#include "aviary/core/checkpoint.h"
#include "zip_reader.h"

namespace aviary::detail {

// An uninitialised tensor for a checkpoint's data. One of 2 MiB or more gets memory of its own on 2 MiB pages
// (huge_pages.h: the CPU engine reads fp32 and bf16 weights in place, so they are streamed from these pages); smaller
// ones come from LibTorch's allocator.
at::Tensor empty_for_load(at::IntArrayRef shape, at::ScalarType dtype);

TensorList read_pth(const MappedFile& file);
TensorList read_safetensors(const MappedFile& file, Metadata* metadata);
// Picks the reader by content (zip magic -> .pth, a '{' after 8 bytes -> safetensors); refuses empty, legacy and
// unknown formats.
TensorList read_checkpoint(const MappedFile& file, Metadata* metadata);

}  // namespace aviary::detail
