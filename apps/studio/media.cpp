// Image loading and demo media for the panels (media.h): OpenCV imread/resize; sound clips for display.
#include "media.h"

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

std::shared_ptr<AudioClip> make_audio_clip(std::vector<float> samples, int sample_rate,
                                           const audio::AudioRwkvConfig* model) {
    auto clip = std::make_shared<AudioClip>();
    clip->sample_rate = sample_rate;
    clip->spectrogram = model_spectrogram(samples, sample_rate, model);
    clip->samples = std::move(samples);
    const Spectrogram& s = clip->spectrogram;
    clip->db_high = s.max_db, clip->db_low = s.max_db - kSpectrogramRangeDb;
    // Texture columns: each the loudest of `group` frames, so long sounds stay within GL's texture sizes; rows:
    // the highest band on top.
    const int group = (s.n_frames + kMaxSpectrogramColumns - 1) / kMaxSpectrogramColumns;
    const int cols = (s.n_frames + group - 1) / group;
    std::vector<float> rows(size_t(s.n_mels) * cols, -1e30f);
    for (int m = 0; m < s.n_mels; ++m)
        for (int t = 0; t < s.n_frames; ++t) {
            float& v = rows[size_t(s.n_mels - 1 - m) * cols + t / group];
            v = std::max(v, s.at(t, m));
        }
    clip->spectrogram_rgba.width = cols;
    clip->spectrogram_rgba.height = s.n_mels;
    clip->spectrogram_rgba.rgba = colormap_rgba(rows, float(clip->db_low), float(clip->db_high), Colormap::Heat);
    return clip;
}

}  // namespace aviary::studio
