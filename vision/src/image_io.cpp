// Image decoding for the vision models (OpenCV imdecode): EXIF orientation, grey/alpha/16-bit to RGB uint8, and a
// size check on the PNG/JPEG header before any pixel is decoded (a "decompression bomb" is refused up front).
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "aviary/vision/image.h"

namespace aviary::vision {
namespace {

uint32_t be32(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (p[2] << 8) | p[3];
}
uint32_t be16(const unsigned char* p) {
    return (uint32_t(p[0]) << 8) | p[1];
}

// Width and height from a PNG IHDR or a JPEG SOFn marker; {0, 0} for other formats or when not found.
std::pair<int64_t, int64_t> probe_size(const std::string& bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t n = bytes.size();
    static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (n >= 24 && std::equal(kPng, kPng + 8, p)) return {be32(p + 16), be32(p + 20)};
    if (n >= 4 && p[0] == 0xff && p[1] == 0xd8) {
        size_t i = 2;
        while (i + 9 < n) {
            if (p[i] != 0xff) return {0, 0};
            const unsigned char m = p[i + 1];
            if (m == 0xff) {
                ++i;
                continue;
            }
            const bool sof = (m >= 0xc0 && m <= 0xcf) && m != 0xc4 && m != 0xc8 && m != 0xcc;
            if (sof) return {be16(p + i + 7), be16(p + i + 5)};
            if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) {
                i += 2;
                continue;
            }
            i += 2 + be16(p + i + 2);
        }
    }
    return {0, 0};
}

}  // namespace

at::Tensor decode_image(const std::string& bytes, const std::string& name, int64_t max_pixels) {
    AVIARY_CHECK(!bytes.empty(), "image '", name, "' is empty");
    const auto [pw, ph] = probe_size(bytes);
    AVIARY_CHECK(pw * ph <= max_pixels, "image '", name, "' is ", pw, "x", ph, " pixels, more than the ", max_pixels,
                 " this program accepts");
    // Truncated PNG/JPEG files are refused here: their decoders would print libpng/libjpeg warnings on stderr.
    const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
    if (bytes.size() >= 8 && u[0] == 0x89 && u[1] == 'P' && u[2] == 'N' && u[3] == 'G')
        AVIARY_CHECK(bytes.find("IEND", bytes.size() > 64 ? bytes.size() - 64 : 0) != std::string::npos,
                     "cannot decode image '", name, "': the PNG file is truncated (no IEND chunk)");
    if (bytes.size() >= 4 && u[0] == 0xff && u[1] == 0xd8) {
        const size_t tail = bytes.size() > 64 ? bytes.size() - 64 : 0;
        AVIARY_CHECK(bytes.find("\xff\xd9", tail) != std::string::npos, "cannot decode image '", name,
                     "': the JPEG file is truncated (no end-of-image marker)");
    }
    cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    cv::Mat img;
    try {
        // ANYDEPTH|ANYCOLOR keeps 16-bit and grey as they are; unlike IMREAD_UNCHANGED it applies EXIF orientation.
        img = cv::imdecode(raw, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
    } catch (const cv::Exception& e) {
        AVIARY_FAIL("cannot decode image '", name, "': ", e.what());
    }
    AVIARY_CHECK(!img.empty(), "cannot decode image '", name,
                 "' (not an image in a format OpenCV reads, or the file is truncated or corrupt)");
    AVIARY_CHECK(int64_t(img.rows) * img.cols <= max_pixels, "image '", name, "' is ", img.cols, "x", img.rows,
                 " pixels, more than the ", max_pixels, " this program accepts");
    if (img.depth() == CV_16U) {
        img.convertTo(img, CV_8U, 1.0 / 257.0);  // rounds to nearest: 65535 -> 255
    } else if (img.depth() == CV_32F) {
        img.convertTo(img, CV_8U, 255.0);  // float images (EXR, TIFF) in [0, 1]
    } else {
        AVIARY_CHECK(img.depth() == CV_8U, "image '", name, "' has an unsupported sample type (depth code ",
                     img.depth(), "; expected 8- or 16-bit)");
    }
    cv::Mat rgb;
    switch (img.channels()) {
        case 1:
            cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB);
            break;
        case 2: {
            std::vector<cv::Mat> ch;
            cv::split(img, ch);
            cv::cvtColor(ch[0], rgb, cv::COLOR_GRAY2RGB);
            break;
        }
        case 3:
            cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB);
            break;
        case 4:
            cv::cvtColor(img, rgb, cv::COLOR_BGRA2RGB);
            break;
        default:
            AVIARY_FAIL("image '", name, "' has ", img.channels(), " channels (expected 1 to 4)");
    }
    auto out = torch::empty({rgb.rows, rgb.cols, 3}, torch::kUInt8);
    for (int y = 0; y < rgb.rows; ++y)
        std::memcpy(out.data_ptr<uint8_t>() + int64_t(y) * rgb.cols * 3, rgb.ptr<uint8_t>(y), size_t(rgb.cols) * 3);
    return out;
}

at::Tensor load_image(const std::string& path, int64_t max_pixels) {
    std::error_code ec;
    AVIARY_CHECK(std::filesystem::exists(path, ec), "image '", path, "' does not exist");
    AVIARY_CHECK(!std::filesystem::is_directory(path, ec), "image '", path, "' is a directory, expected a file");
    std::string bytes;
    AVIARY_CHECK(read_whole_file(path, bytes), "cannot open image '", path, "'");
    return decode_image(bytes, path, max_pixels);
}

at::Tensor load_clip_image(const std::string& path, const ClipPreprocess& options) {
    return clip_preprocess(load_image(path), options);
}

}  // namespace aviary::vision
