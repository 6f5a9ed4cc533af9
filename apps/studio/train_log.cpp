// Trainer JSONL log reading and ETA (train_log.h); nlohmann-json as the trainer that writes it.
#include "train_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "aviary/core/error.h"

namespace aviary::studio {

std::optional<TrainLogPoint> parse_train_log_line(const std::string& line, int64_t line_number) {
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
        AVIARY_FAIL("train log line ", line_number, ": not JSON: '", line.substr(0, 60), "'");
    }
    AVIARY_CHECK(
        j.is_object() && j.contains("step") && j["step"].is_number() && j.contains("loss") && j["loss"].is_number(),
        "train log line ", line_number, ": expected an object with numeric \"step\" and \"loss\"");
    auto num = [&](const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0; };
    TrainLogPoint p;
    p.step = j["step"].get<int64_t>();
    p.loss = j["loss"].get<double>();
    p.lr = num("lr");
    p.grad_norm = num("grad_norm");
    p.tokens_per_s = num("tokens_per_s");
    p.elapsed = num("elapsed");
    p.tokens = int64_t(num("tokens"));
    return p;
}

TrainLogReader::TrainLogReader(std::string path) : path_(std::move(path)) {}

std::vector<TrainLogPoint> TrainLogReader::poll() {
    std::vector<TrainLogPoint> out;
    restarted_ = false;
    struct stat st {};
    if (path_.empty() || ::stat(path_.c_str(), &st) != 0) return out;
    if (uint64_t(st.st_size) < offset_) {  // truncated: a new run writes the file again
        offset_ = 0, partial_.clear(), line_ = 0, restarted_ = true;
    }
    if (uint64_t(st.st_size) == offset_) return out;
    std::ifstream f(path_, std::ios::binary);
    if (!f) return out;
    f.seekg(std::streamoff(offset_));
    std::string chunk(size_t(uint64_t(st.st_size) - offset_), '\0');
    f.read(chunk.data(), std::streamsize(chunk.size()));
    chunk.resize(size_t(f.gcount()));
    offset_ += chunk.size();
    partial_ += chunk;
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
        ++line_;
        if (auto p = parse_train_log_line(partial_.substr(start, nl - start), line_)) out.push_back(*p);
    }
    partial_.erase(0, start);
    return out;
}

double eta_seconds(const std::vector<TrainLogPoint>& points, int64_t total_steps, int window) {
    if (points.size() < 2) return -1;
    const TrainLogPoint& last = points.back();
    const TrainLogPoint& first = points[points.size() - std::min<size_t>(points.size(), size_t(std::max(2, window)))];
    const double steps = double(last.step - first.step);
    if (steps <= 0) return -1;
    const double per_step = (last.elapsed - first.elapsed) / steps;
    return std::max(0.0, per_step * double(total_steps - last.step));
}

std::string format_duration(double seconds) {
    if (!(seconds >= 0)) return "?";
    const long s = std::lround(seconds);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ldh %02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        std::snprintf(buf, sizeof buf, "%ldm %02lds", s / 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

}  // namespace aviary::studio
