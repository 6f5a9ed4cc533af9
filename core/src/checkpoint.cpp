// read_checkpoint and read_checkpoint_bytes (format sniffing with clear errors for missing/empty/unknown files; one
// sniffer for a mapped file and for bytes in memory), convert_dtype and
// find_tensor. The formats themselves live in pth_reader.cpp (torch.save zip) and safetensors.cpp.
// Facts: shared/reference/rwkv_core_spec.md §1 (official checkpoints are flat torch.save state dicts, §1.5 dtypes).
#include <ATen/ATen.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "aviary/core/huge_pages.h"
#include "checkpoint_readers.h"

namespace aviary {

TensorList read_checkpoint(const std::string& path, Metadata* metadata) {
    if (metadata != nullptr) metadata->clear();
    struct stat st {};
    AVIARY_CHECK(::stat(path.c_str(), &st) == 0, path, ": checkpoint not found (", std::strerror(errno),
                 "); expected a .pth or .safetensors file");
    AVIARY_CHECK(!S_ISDIR(st.st_mode), path, ": is a directory; expected a .pth or .safetensors checkpoint file");
    AVIARY_CHECK(S_ISREG(st.st_mode), path, ": is not a regular file; expected a .pth or .safetensors checkpoint");
    const detail::MappedFile file(path);
    return detail::read_checkpoint(file, metadata);
}

TensorList read_checkpoint_bytes(const void* data, size_t size, const std::string& name, Metadata* metadata) {
    const detail::MappedFile file(static_cast<const uint8_t*>(data), size, name);
    return detail::read_checkpoint(file, metadata);
}

at::Tensor detail::empty_for_load(at::IntArrayRef shape, at::ScalarType dtype) {
    const at::TensorOptions options = at::TensorOptions().dtype(dtype);
    const int64_t numel = c10::multiply_integers(shape);
    const size_t bytes = size_t(numel) * at::elementSize(dtype);
    if (bytes < cpu::kHugePageBytes || !cpu::huge_pages_wanted()) return at::empty(shape, options);
    auto memory = std::make_shared<cpu::HugeBuffer>(cpu::alloc_huge(bytes));
    return at::from_blob(
        memory->get(), shape, [memory](void*) mutable { memory.reset(); }, options);
}

TensorList detail::read_checkpoint(const MappedFile& file, Metadata* metadata) {
    if (metadata != nullptr) metadata->clear();
    const std::string& path = file.path();
    AVIARY_CHECK(file.size() > 0, path, ": file is empty; expected a .pth or .safetensors checkpoint");
    unsigned char head[9] = {};
    const size_t got = std::min<uint64_t>(file.size(), sizeof head);
    std::memcpy(head, file.data(), got);

    if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return read_pth(file);
    // safetensors: 8-byte header length, then the JSON header's '{'.
    if (got == 9 && head[8] == '{') return read_safetensors(file, metadata);
    // torch.save before PyTorch 1.6 (or _use_new_zipfile_serialization=False) writes a bare pickle stream.
    AVIARY_CHECK(head[0] != 0x80, path,
                 ": legacy (non-zip) torch.save format; re-save it with a current "
                 "torch.save, or convert it to safetensors");
    char hex[16];
    std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", head[0], head[1], head[2], head[3]);
    AVIARY_FAIL(path, ": unknown checkpoint format (starts with bytes ", hex,
                "); expected a torch.save .pth (zip) or a .safetensors file");
}

TensorList convert_dtype(const TensorList& tensors, const std::string& dtype) {
    at::ScalarType target;
    if (dtype == "fp32") {
        target = at::kFloat;
    } else if (dtype == "fp16") {
        target = at::kHalf;
    } else if (dtype == "bf16") {
        target = at::kBFloat16;
    } else {
        AVIARY_FAIL("unknown dtype '", dtype, "'; expected fp32, fp16 or bf16");
    }
    TensorList out;
    out.reserve(tensors.size());
    for (const NamedTensor& nt : tensors) {
        const bool floating = nt.tensor.defined() && nt.tensor.is_floating_point();
        out.push_back(NamedTensor{nt.name, floating ? nt.tensor.to(target) : nt.tensor});
    }
    return out;
}

const at::Tensor* find_tensor(const TensorList& tensors, const std::string& name) {
    for (const NamedTensor& nt : tensors)
        if (nt.name == name) return &nt.tensor;
    return nullptr;
}

}  // namespace aviary
