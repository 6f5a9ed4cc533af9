// Internal: options of the torch.save-format writer (core/src/pth_writer.cpp) that tests need and the public
// write_pth() does not expose. Forcing zip64 lets a small file exercise the >4 GB record layouts (PKWARE
// APPNOTE 6.3 §4.3.9/4.5.3: zip64 extra fields, zip64 end record + locator). Not part of the public API.
#pragma once
#include <cstdint>
#include <string>

#include "aviary/core/checkpoint.h"

namespace aviary::detail {

struct PthWriteOptions {
    // Every entry and the end record use zip64 forms, as a >4 GB archive would (default: only where needed).
    bool force_zip64 = false;
};

void write_pth_with(const std::string& path, const TensorList& tensors, const PthWriteOptions& options);

// CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320) as ZIP stores it; `crc` continues a running value.
uint32_t crc32_update(uint32_t crc, const void* data, uint64_t size);

}  // namespace aviary::detail
