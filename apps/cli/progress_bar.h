// A terminal progress line on stderr for long CLI jobs (`aviary train`, `aviary
// data build`): a bar redrawn with '\r' when stderr is a terminal, otherwise a
// plain line every few percent so that logs stay readable.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace aviary::cli {

class ProgressBar {
public:
    explicit ProgressBar(bool enabled = true) : enabled_(enabled), tty_(::isatty(2) != 0) {}

    // done/total units, `text` appended after the bar (e.g. "loss 2.31  1500
    // tok/s").
    void update(double done, double total, const std::string& text) {
        if (!enabled_ || total <= 0) return;
        const double frac = done / total;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
        if (!tty_) {
            const int pct = int(frac * 100);
            if (pct < next_pct_ && done < total) return;
            next_pct_ = pct + 5;
        }
        char bar[32];
        const int width = 24, fill = int(frac * width + 0.5);
        for (int i = 0; i < width; ++i) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        std::fprintf(stderr, "%s[%s] %3d%% %s ETA %s%s", tty_ ? "\r" : "", bar, int(frac * 100), text.c_str(),
                     format_time(eta).c_str(), tty_ ? "\033[K" : "\n");
        std::fflush(stderr);
        drawn_ = true;
    }
    // Ends the bar's line (call before printing anything else to stderr).
    void finish() {
        if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\n");
        drawn_ = false;
    }

    static std::string format_time(double s) {
        const long t = long(s + 0.5);
        char buf[32];
        if (t >= 3600)
            std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
        else
            std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
        return buf;
    }

private:
    bool enabled_, tty_;
    bool drawn_ = false;
    int next_pct_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace aviary::cli
