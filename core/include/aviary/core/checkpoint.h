// Reading and writing state dicts: official `torch.save` .pth files (zip + a restricted unpickler that
// accepts only what a state dict uses; a writer torch.load accepts) and safetensors (Aviary's native format).
// Facts: ../shared/reference/rwkv_core_spec.md §1. Everything read from a file is bounds-checked.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace aviary {

struct NamedTensor {
    std::string name;
    at::Tensor tensor;
};
// A state dict in file order (the order matters for nothing in Aviary, but round trips keep it).
using TensorList = std::vector<NamedTensor>;
using Metadata = std::map<std::string, std::string>;

// Official .pth (torch.save zip format). Tensors are returned contiguous, on CPU, in the stored dtype
// (float32, float16, bfloat16, float64, int64, int32, int8, uint8, bool accepted). A top-level dict whose only
// entry is "state_dict", "model" or "module" holding the tensors is unwrapped. Throws aviary::Error on anything else.
TensorList read_pth(const std::string& path);

// safetensors: 8-byte little-endian header length, JSON header, raw data. dtypes F32, F16, BF16, F64, I64,
// I32, I8, U8, BOOL. Tensors come back in data-section order. `metadata` (optional) receives the
// "__metadata__" string map.
TensorList read_safetensors(const std::string& path, Metadata* metadata = nullptr);

// Writes atomically (temp file in the same directory, fsync, rename); tensors are made contiguous on CPU.
void write_safetensors(const std::string& path, const TensorList& tensors, const Metadata& metadata = {});

// Official .pth as torch.save writes it, loadable by torch.load (1.13 and 2.x): a zip of STORED entries
// <stem>/data.pkl (pickle protocol 2 of an OrderedDict, one storage per tensor), <stem>/byteorder,
// <stem>/data/<i>, <stem>/version; data 64-byte aligned, zip64 where needed, CRC-32 on every entry. <stem> is the
// file name without its extension. Same dtypes as read_pth; tensors are made contiguous on CPU; names must be
// unique UTF-8. Writes atomically like write_safetensors; equal input gives byte-identical files.
void write_pth(const std::string& path, const TensorList& tensors);

// Picks the reader by content (zip magic "PK\3\4" -> .pth, otherwise safetensors); a clear error for
// missing files, directories, empty or unknown formats.
TensorList read_checkpoint(const std::string& path, Metadata* metadata = nullptr);

// A checkpoint already in memory (`size` bytes at `data`, kept alive by the caller during the call), read exactly as
// read_checkpoint reads a file with those bytes (the same sniffer and readers); errors name `name` where they would
// name the file.
TensorList read_checkpoint_bytes(const void* data, size_t size, const std::string& name, Metadata* metadata = nullptr);

// Converts every floating tensor to `dtype` ("fp32", "fp16", "bf16"); integer tensors are kept.
TensorList convert_dtype(const TensorList& tensors, const std::string& dtype);

// Looks a name up; nullptr when absent.
const at::Tensor* find_tensor(const TensorList& tensors, const std::string& name);

}  // namespace aviary
