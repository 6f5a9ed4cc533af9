// The trainer's JSONL log (core/src/train_loop.cpp writes OUT/train_log.jsonl: one object per step with
// step, loss, lr, grad_norm, tokens, tokens_per_s, elapsed), read incrementally while a run appends to it,
// and the progress/ETA the Training panel shows.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aviary::studio {

struct TrainLogPoint {
    int64_t step = 0;
    double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, elapsed = 0;
    int64_t tokens = 0;
};

// One line; std::nullopt for a blank line. A line that is not a JSON object with numeric "step" and
// "loss" throws aviary::Error naming the line number.
std::optional<TrainLogPoint> parse_train_log_line(const std::string& line, int64_t line_number = 0);

// Follows a growing log file: poll() returns the points of the complete lines appended since the last call
// (a partial last line waits for its newline). When the file shrinks (a new run), it starts over and
// reset() is reported through restarted().
class TrainLogReader {
public:
    explicit TrainLogReader(std::string path = "");
    std::vector<TrainLogPoint> poll();
    bool restarted() const { return restarted_; }
    const std::string& path() const { return path_; }
    int64_t lines() const { return line_; }

private:
    std::string path_;
    uint64_t offset_ = 0;
    std::string partial_;
    int64_t line_ = 0;
    bool restarted_ = false;
};

// Seconds left for a run of total_steps, from the rate of the last `window` points (elapsed per step);
// -1 when fewer than two points.
double eta_seconds(const std::vector<TrainLogPoint>& points, int64_t total_steps, int window = 20);
// "1h 02m", "3m 05s", "42s"
std::string format_duration(double seconds);

}  // namespace aviary::studio
