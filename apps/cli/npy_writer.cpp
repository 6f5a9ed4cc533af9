// NumPy .npy v1.0 writer: magic "\x93NUMPY", version 1.0, little-endian uint16 header length, a Python
// dict literal header padded with spaces and ending in '\n' so that the data starts 64-byte aligned.
#include "npy_writer.h"

#include <cstring>

namespace aviary::cli {

std::string npy_bytes(const float* data, const std::vector<int64_t>& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    int64_t n = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
        if (i + 1 < shape.size()) dict += " ";
        n *= shape[i];
    }
    dict += "), }";
    const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
    size_t total = preamble + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(dict.size());
    out += static_cast<char>(len & 0xff);
    out += static_cast<char>(len >> 8);
    out += dict;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(float));
    return out;
}

}  // namespace aviary::cli
