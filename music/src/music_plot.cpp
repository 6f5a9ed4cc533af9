// Line plots drawn with OpenCV (core/imgproc/imgcodecs only): the loss-by-position curves of one or more
// models on shared axes, with tick labels and a legend, written as PNG.
#ifdef AVIARY_MUSIC_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/music/music.h"

namespace aviary::music {

#ifndef AVIARY_MUSIC_HAVE_OPENCV
void plot_curves_png(const std::string& path, const std::vector<std::vector<double>>&, const std::vector<std::string>&,
                     const std::string&, const std::string&, const std::string&, const std::vector<std::string>&) {
    throw Error("cannot write the plot '" + path + "': this build of aviary has no OpenCV (the CSV is written)");
}
#else
void plot_curves_png(const std::string& path, const std::vector<std::vector<double>>& curves,
                     const std::vector<std::string>& labels, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<std::string>& x_ticks) {
    AVIARY_CHECK(!curves.empty(), "nothing to plot");
    const int W = 960, H = 600, left = 80, right = 20, top = 50, bottom = 60;
    cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
    size_t n_max = 1;
    double lo = 1e30, hi = -1e30;
    for (const auto& c : curves) {
        n_max = std::max(n_max, c.size());
        for (double v : c)
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (!(hi > lo)) lo = (lo > 1e29 ? 0 : lo) - 1, hi = lo + 2;
    lo = std::max(0.0, lo - 0.05 * (hi - lo));
    hi += 0.05 * (hi - lo);
    const int pw = W - left - right, ph = H - top - bottom;
    auto px = [&](double i) { return left + int(std::lround(i / double(std::max<size_t>(1, n_max - 1)) * pw)); };
    auto py = [&](double v) { return top + int(std::lround((hi - v) / (hi - lo) * ph)); };
    const cv::Scalar black(0, 0, 0), grid(225, 225, 225);
    const int font = cv::FONT_HERSHEY_SIMPLEX;
    char buf[64];
    for (int k = 0; k <= 5; ++k) {  // ticks and grid
        const double v = lo + (hi - lo) * k / 5.0;
        cv::line(img, {left, py(v)}, {W - right, py(v)}, grid, 1);
        std::snprintf(buf, sizeof buf, "%.2f", v);
        cv::putText(img, buf, {8, py(v) + 5}, font, 0.45, black, 1, cv::LINE_AA);
        if (!x_ticks.empty()) continue;
        const double i = double(n_max - 1) * k / 5.0;
        cv::line(img, {px(i), top}, {px(i), H - bottom}, grid, 1);
        std::snprintf(buf, sizeof buf, "%.0f", i);
        cv::putText(img, buf, {px(i) - 12, H - bottom + 20}, font, 0.45, black, 1, cv::LINE_AA);
    }
    for (size_t i = 0; i < x_ticks.size() && i < n_max; ++i) {  // categorical axis
        cv::line(img, {px(double(i)), top}, {px(double(i)), H - bottom}, grid, 1);
        cv::putText(img, x_ticks[i], {px(double(i)) - 4 * int(x_ticks[i].size()), H - bottom + 20}, font, 0.45, black,
                    1, cv::LINE_AA);
    }
    cv::rectangle(img, {left, top}, {W - right, H - bottom}, black, 1);
    cv::putText(img, title, {left, 30}, font, 0.65, black, 1, cv::LINE_AA);
    cv::putText(img, x_label, {left + pw / 2 - 60, H - 15}, font, 0.5, black, 1, cv::LINE_AA);
    cv::putText(img, y_label, {8, top - 10}, font, 0.5, black, 1, cv::LINE_AA);
    const cv::Scalar colors[] = {{200, 80, 30}, {40, 40, 220}, {40, 160, 40}, {160, 40, 160}, {0, 140, 220}};
    for (size_t c = 0; c < curves.size(); ++c) {
        const cv::Scalar col = colors[c % 5];
        std::vector<cv::Point> pts;
        for (size_t i = 0; i < curves[c].size(); ++i)
            if (std::isfinite(curves[c][i])) pts.emplace_back(px(double(i)), py(curves[c][i]));
        if (pts.size() > 1) cv::polylines(img, pts, false, col, 2, cv::LINE_AA);
        if (!x_ticks.empty())
            for (const auto& p : pts) cv::circle(img, p, 4, col, cv::FILLED, cv::LINE_AA);
        const int ly = top + 20 + int(c) * 22;
        cv::line(img, {W - right - 260, ly - 5}, {W - right - 230, ly - 5}, col, 3);
        const std::string label = c < labels.size() ? labels[c] : "model " + std::to_string(c + 1);
        cv::putText(img, label.substr(0, 32), {W - right - 222, ly}, font, 0.45, black, 1, cv::LINE_AA);
    }
    // Encoded in memory, then written atomically: an interrupted run never leaves a partial PNG.
    std::vector<unsigned char> png;
    bool ok = false;
    try {
        ok = cv::imencode(".png", img, png);
    } catch (const cv::Exception& e) {
        AVIARY_FAIL("cannot encode plot '", path, "': ", e.what());
    }
    AVIARY_CHECK(ok, "cannot encode plot '", path, "'");
    write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

#endif

}  // namespace aviary::music
