// Test helpers: a scratch directory, and small WAV files written byte by byte (PCM16 or IEEE float32, any channels and
// rate), so the tests control exactly what libsndfile sees, including broken and extreme files.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace aviary::test {

// A fresh scratch directory per test executable and tag: $TMPDIR/aviary_<tag>_<pid> (as cli_run.h's scratch_dir,
// which needs the CLI path this executable does not have).
inline std::filesystem::path audio_scratch_dir(const std::string& tag) {
    auto d = std::filesystem::temp_directory_path() / ("aviary_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

// interleaved samples; float_format: IEEE float32 (format 3) else PCM 16-bit (format 1)
inline void write_wav(const std::string& path, const std::vector<float>& interleaved, int channels, int rate,
                      bool float_format = false) {
    const uint16_t bits = float_format ? 32 : 16, fmt = float_format ? 3 : 1;
    const uint32_t data_bytes = uint32_t(interleaved.size() * (bits / 8));
    std::ofstream f(path, std::ios::binary);
    auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
    f.write("RIFF", 4);
    u32(36 + data_bytes);
    f.write("WAVEfmt ", 8);
    u32(16);
    u16(fmt);
    u16(uint16_t(channels));
    u32(uint32_t(rate));
    u32(uint32_t(rate * channels * (bits / 8)));
    u16(uint16_t(channels * (bits / 8)));
    u16(bits);
    f.write("data", 4);
    u32(data_bytes);
    for (float s : interleaved) {
        if (float_format) {
            f.write(reinterpret_cast<const char*>(&s), 4);
        } else {
            const float c = s > 1 ? 1 : (s < -1 ? -1 : s);
            u16(uint16_t(int16_t(c * 32767.0f)));
        }
    }
}

}  // namespace aviary::test
