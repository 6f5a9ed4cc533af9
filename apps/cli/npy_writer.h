// Writes float32 arrays as NumPy .npy (format version 1.0, little-endian, C order), atomically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace aviary::cli {

// data holds prod(shape) floats in C order.
std::string npy_bytes(const float* data, const std::vector<int64_t>& shape);

}  // namespace aviary::cli
