// Image and sound loading for the panels (media.h): OpenCV imread/resize, libsndfile.
#include "media.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aviary/core/error.h"
#include "colormap.h"

namespace aviary::studio {

namespace {
ImageRGBA from_mat_rgba(const cv::Mat& rgba) {
    ImageRGBA out;
    out.width = rgba.cols, out.height = rgba.rows;
    out.rgba.resize(size_t(rgba.cols) * rgba.rows * 4);
    for (int y = 0; y < rgba.rows; ++y)
        std::copy(rgba.ptr<uint8_t>(y), rgba.ptr<uint8_t>(y) + rgba.cols * 4,
                  out.rgba.data() + size_t(y) * rgba.cols * 4);
    return out;
}
}  // namespace

ImageRGBA load_image_rgba(const std::string& path) {
    AVIARY_CHECK(std::filesystem::is_regular_file(path), "image '", path, "' does not exist");
    cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
    AVIARY_CHECK(!m.empty(), "image '", path, "' could not be decoded (expected PNG, JPEG, BMP, TIFF or WebP)");
    cv::Mat rgba;
    cv::cvtColor(m, rgba, cv::COLOR_BGR2RGBA);
    return from_mat_rgba(rgba);
}

ImageRGBA clip_preview_crop(const ImageRGBA& image, int size) {
    AVIARY_CHECK(image.width > 0 && image.height > 0, "preview crop: empty image");
    cv::Mat src(image.height, image.width, CV_8UC4, const_cast<uint8_t*>(image.rgba.data()));
    const double scale = double(size) / std::min(image.width, image.height);
    const int w = std::max(size, int(std::lround(image.width * scale)));
    const int h = std::max(size, int(std::lround(image.height * scale)));
    cv::Mat resized;
    cv::resize(src, resized, cv::Size(w, h), 0, 0, cv::INTER_CUBIC);
    const cv::Rect crop((w - size) / 2, (h - size) / 2, size, size);
    return from_mat_rgba(resized(crop).clone());
}

ImageRGBA demo_test_pattern(int width, int height) {
    ImageRGBA img;
    img.width = width, img.height = height;
    img.rgba.resize(size_t(width) * height * 4);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            uint8_t* p = &img.rgba[(size_t(y) * width + x) * 4];
            const bool check = ((x / 40) + (y / 40)) % 2 == 0;
            const float u = float(x) / float(width - 1), v = float(y) / float(height - 1);
            const Rgb c = colormap_at(Colormap::Heat, u);
            const float shade = check ? 1.0f : 0.8f;
            p[0] = uint8_t(std::lround(255 * c.r * shade));
            p[1] = uint8_t(std::lround(255 * (c.g * shade * (1 - 0.5f * v) + 0.5f * v * 0.6f)));
            p[2] = uint8_t(std::lround(255 * (c.b * shade * (1 - v) + v)));
            p[3] = 255;
        }
    return img;
}

void load_sound_mono(const std::string& path, std::vector<float>& samples, int& sample_rate) {
    AVIARY_CHECK(std::filesystem::is_regular_file(path), "sound file '", path, "' does not exist");
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    AVIARY_CHECK(f != nullptr, "sound file '", path, "' could not be read (", sf_strerror(nullptr),
                 "; expected WAV, FLAC, OGG or another libsndfile format)");
    std::vector<float> inter(size_t(info.frames) * size_t(info.channels));
    const sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
    sf_close(f);
    AVIARY_CHECK(got > 0 && info.channels > 0, "sound file '", path, "' has no samples");
    samples.assign(size_t(got), 0.f);
    for (sf_count_t i = 0; i < got; ++i) {
        float s = 0;
        for (int c = 0; c < info.channels; ++c) s += inter[size_t(i) * info.channels + c];
        samples[size_t(i)] = s / float(info.channels);
    }
    sample_rate = info.samplerate;
}

void demo_chirp(std::vector<float>& samples, int& sample_rate) {
    sample_rate = 16000;
    const double kPi = 3.14159265358979323846;
    const int n = 4 * sample_rate;
    samples.assign(size_t(n), 0.f);
    const double f0 = 200, f1 = 4000, t_chirp = 2.5;
    const double k = std::log(f1 / f0) / t_chirp;
    for (int i = 0; i < n; ++i) {
        const double t = double(i) / sample_rate;
        double v;
        if (t < t_chirp)  // phase of an exponential chirp: 2π f0 (e^{kt} − 1) / k
            v = 0.5 * std::sin(2 * kPi * f0 * (std::exp(k * t) - 1) / k);
        else
            v = 0.35 * std::sin(2 * kPi * 440 * t) + 0.2 * std::sin(2 * kPi * 1320 * t);
        const double fade = std::min(1.0, std::min(t, 4.0 - t) / 0.02);
        samples[size_t(i)] = float(v * fade);
    }
}

std::shared_ptr<AudioClip> make_audio_clip(std::vector<float> samples, int sample_rate) {
    auto clip = std::make_shared<AudioClip>();
    clip->sample_rate = sample_rate;
    LogMelOptions o;
    // 10 ms hops, longer for long sounds so the texture stays within 8000 columns (GL size limits).
    o.hop = std::max<int>({1, sample_rate / 100, int(samples.size() / 8000) + 1});
    o.n_fft = 512;
    while (o.n_fft < sample_rate / 40) o.n_fft *= 2;  // ≥ 25 ms windows
    o.n_mels = 64;
    clip->spectrogram = log_mel_spectrogram(samples, sample_rate, o);
    clip->samples = std::move(samples);
    const Spectrogram& s = clip->spectrogram;
    clip->db_high = s.max_db, clip->db_low = s.max_db - o.top_db;
    // Texture rows: highest band on top.
    std::vector<float> rows(size_t(s.n_mels) * s.n_frames);
    for (int m = 0; m < s.n_mels; ++m)
        for (int t = 0; t < s.n_frames; ++t) rows[size_t(s.n_mels - 1 - m) * s.n_frames + t] = s.at(t, m);
    clip->spectrogram_rgba.width = s.n_frames;
    clip->spectrogram_rgba.height = s.n_mels;
    clip->spectrogram_rgba.rgba = colormap_rgba(rows, float(clip->db_low), float(clip->db_high), Colormap::Heat);
    return clip;
}

}  // namespace aviary::studio
