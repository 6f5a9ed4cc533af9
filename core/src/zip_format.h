// ZIP format constants (APPNOTE.TXT: record signatures, fixed record sizes, the zip64 extra field id) shared by
// the reader (zip_reader.cpp) and the .pth writer (pth_writer.cpp).
#pragma once
#include <cstdint>

namespace aviary::detail::zip {

constexpr uint32_t kSigLocalHeader = 0x04034b50;
constexpr uint32_t kSigCentralHeader = 0x02014b50;
constexpr uint32_t kSigEocd = 0x06054b50;
constexpr uint32_t kSigZip64Eocd = 0x06064b50;
constexpr uint32_t kSigZip64Locator = 0x07064b50;
constexpr uint64_t kSizeLocalHeader = 30;
constexpr uint64_t kSizeCentralHeader = 46;
constexpr uint64_t kSizeEocd = 22;
constexpr uint64_t kSizeZip64Eocd = 56;
constexpr uint64_t kSizeZip64Locator = 20;
constexpr uint16_t kExtraZip64 = 0x0001;

}  // namespace aviary::detail::zip
