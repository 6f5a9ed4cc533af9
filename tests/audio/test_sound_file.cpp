// Sound input (audio/src/sound_file.cpp): mono mix, resampling (a resampled sine keeps its frequency), pad/trim,
// and bad input (empty file, not audio, 0 frames, NaN samples, missing file) giving one clear error naming the file;
// 8 channels and 384 kHz are within the documented limits and are read, mixed and resampled. A sound file's bytes
// decoded in memory give the file's samples bit for bit and, when bad, the file's messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "aviary/audio/sound_file.h"
#include "aviary/core/error.h"
#include "wav_writer.h"

namespace aviary::audio {
namespace {

std::string error_of(const std::string& path) {
    try {
        read_sound_mono(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string bytes_of(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string memory_error_of(const std::string& bytes, const std::string& name) {
    try {
        decode_sound_mono(bytes.data(), bytes.size(), name);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(SoundFile, StereoIsMixedToMono) {
    auto dir = test::audio_scratch_dir("audio_sound");
    std::vector<float> inter;
    for (int t = 0; t < 100; ++t) {
        inter.push_back(0.5f);
        inter.push_back(-0.25f);
    }
    test::write_wav((dir / "st.wav").string(), inter, 2, 8000, /*float_format=*/true);
    SoundInfo info;
    auto x = read_sound_mono((dir / "st.wav").string(), &info);
    EXPECT_EQ(info.channels, 2);
    EXPECT_EQ(info.sample_rate, 8000);
    ASSERT_EQ(x.size(), 100u);
    for (float v : x) EXPECT_FLOAT_EQ(v, 0.125f);
}

TEST(SoundFile, ResamplingKeepsTheFrequency) {
    // 1 kHz sine at 48 kHz -> 32 kHz: compare with the ideal sine away from the edges (sinc filter transients)
    std::vector<float> x(48000);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(0.5 * std::sin(2 * M_PI * 1000.0 * double(i) / 48000.0));
    auto y = resample(x, 48000, 32000);
    EXPECT_NEAR(double(y.size()), 32000.0, 2.0);
    double worst = 0;
    for (size_t i = 1000; i + 1000 < y.size(); ++i)
        worst = std::max(worst, std::abs(double(y[i]) - 0.5 * std::sin(2 * M_PI * 1000.0 * double(i) / 32000.0)));
    EXPECT_LT(worst, 2e-3) << "max deviation from the ideal 1 kHz sine";
}

TEST(SoundFile, FitLengthPadsAndCuts) {
    EXPECT_EQ(fit_length({1, 2, 3}, 5), (std::vector<float>{1, 2, 3, 0, 0}));
    EXPECT_EQ(fit_length({1, 2, 3}, 2), (std::vector<float>{1, 2}));
}

TEST(SoundFile, EightChannelsAnd384kHzAreRead) {
    auto dir = test::audio_scratch_dir("audio_sound8");
    std::vector<float> inter;
    for (int t = 0; t < 3840; ++t)
        for (int c = 0; c < 8; ++c) inter.push_back(c == 0 ? 0.8f : 0.0f);
    test::write_wav((dir / "c8.wav").string(), inter, 8, 384000, true);
    SoundInfo info;
    auto y = load_clip((dir / "c8.wav").string(), 32000, 320, &info);
    EXPECT_EQ(info.channels, 8);
    EXPECT_EQ(info.sample_rate, 384000);
    ASSERT_EQ(y.size(), 320u);
    EXPECT_NEAR(y[160], 0.1f, 1e-3);  // 0.8 / 8 in the middle of the clip
}

TEST(SoundFile, BadInputGivesClearErrors) {
    auto dir = test::audio_scratch_dir("audio_bad");
    const std::string empty = (dir / "empty.wav").string(), text = (dir / "text.wav").string(),
                      zero = (dir / "zero.wav").string(), nan = (dir / "nan.wav").string();
    std::ofstream(empty).close();
    std::ofstream(text) << "this is not audio\n";
    test::write_wav(zero, {}, 1, 16000);
    test::write_wav(nan, {0.1f, std::nanf(""), 0.2f}, 1, 16000, true);
    EXPECT_NE(error_of(empty).find("is empty"), std::string::npos) << error_of(empty);
    EXPECT_NE(error_of(text).find("not a sound file"), std::string::npos) << error_of(text);
    EXPECT_NE(error_of(zero).find("0 frames"), std::string::npos) << error_of(zero);
    EXPECT_NE(error_of(nan).find("non-finite"), std::string::npos) << error_of(nan);
    EXPECT_NE(error_of((dir / "missing.wav").string()).find("does not exist"), std::string::npos);
    for (const auto& p : {empty, text, zero, nan}) EXPECT_NE(error_of(p).find(p), std::string::npos) << p;
}

TEST(SoundFile, BytesInMemoryDecodeAsTheFileBitForBit) {
    auto dir = test::audio_scratch_dir("audio_memory");
    std::vector<std::string> paths = {std::string(AVIARY_SOURCE_DIR) + "/assets/samples/sine.wav",
                                      std::string(AVIARY_SOURCE_DIR) + "/assets/samples/white_noise.wav"};
    std::vector<float> st, c8;
    for (int t = 0; t < 4410; ++t) st.push_back(float(std::sin(0.01 * t))), st.push_back(float(std::cos(0.03 * t)));
    for (int t = 0; t < 3840; ++t)
        for (int c = 0; c < 8; ++c) c8.push_back(float(0.1 * c) * float(std::sin(0.002 * t * (c + 1))));
    test::write_wav((dir / "stereo16.wav").string(), st, 2, 44100);
    test::write_wav((dir / "c8.wav").string(), c8, 8, 384000, true);
    paths.push_back((dir / "stereo16.wav").string());
    paths.push_back((dir / "c8.wav").string());
    for (const std::string& p : paths) {
        SoundInfo from_file, from_memory;
        const std::vector<float> x = read_sound_mono(p, &from_file);
        const std::string bytes = bytes_of(p);
        const std::vector<float> y = decode_sound_mono(bytes.data(), bytes.size(), p, &from_memory);
        EXPECT_EQ(from_memory.sample_rate, from_file.sample_rate) << p;
        EXPECT_EQ(from_memory.channels, from_file.channels) << p;
        EXPECT_EQ(from_memory.frames, from_file.frames) << p;
        ASSERT_EQ(y.size(), x.size()) << p;
        ASSERT_GT(x.size(), 100u) << p;
        size_t differ = 0;
        for (size_t i = 0; i < x.size(); ++i) differ += std::memcmp(&x[i], &y[i], sizeof(float)) != 0;
        EXPECT_EQ(differ, 0u) << p << ": samples that differ from the file's";
    }
}

TEST(SoundFile, BadBytesInMemoryGiveTheFilesMessages) {
    auto dir = test::audio_scratch_dir("audio_memory_bad");
    const std::string text = (dir / "text.wav").string(), zero = (dir / "zero.wav").string(),
                      nan = (dir / "nan.wav").string(), cut = (dir / "cut.wav").string();
    std::ofstream(text) << "this is not audio\n";
    test::write_wav(zero, {}, 1, 16000);
    test::write_wav(nan, {0.1f, std::nanf(""), 0.2f}, 1, 16000, true);
    test::write_wav(cut, std::vector<float>(1000, 0.25f), 1, 16000);
    {
        const std::string b = bytes_of(cut);  // the RIFF header alone, its data chunk cut away
        std::ofstream(cut, std::ios::binary | std::ios::trunc) << b.substr(0, 20);
    }
    for (const std::string& p : {text, zero, nan, cut}) {
        const std::string from_file = error_of(p);
        ASSERT_NE(from_file, "") << p;
        EXPECT_EQ(memory_error_of(bytes_of(p), p), from_file) << p;
        EXPECT_NE(memory_error_of(bytes_of(p), "upload.wav").find("'upload.wav'"), std::string::npos) << p;
    }
    EXPECT_NE(memory_error_of("", "upload.wav").find("'upload.wav' is empty"), std::string::npos)
        << memory_error_of("", "upload.wav");
    EXPECT_NE(memory_error_of("RIFF not really a wave file", "the sound").find("not a sound file"), std::string::npos);
}

}  // namespace
}  // namespace aviary::audio
