// The server's one door into the vision and audio libraries: VisualRWKV answers for image content parts, AudioRWKV
// tags for /v1/audio/tags. Everything the server needs of those modules goes through these two classes (so a change
// of their APIs is adapted here alone). Each model answers one request at a time (its own mutex), on the calling
// HTTP thread, beside the text scheduler. Bad media are ApiError 400 naming the field.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace aviary::server {

class VisionAdapter {
public:
    // Loads a VisualRWKV model (its precision as stored); aviary::Error naming the file when it cannot.
    VisionAdapter(const std::string& path, int threads);  // threads: the CPU engine's (<= 0: measured)
    ~VisionAdapter();
    struct Answer {
        std::string text;
        int64_t prompt_tokens = 0;  // text tokens and image rows
        int64_t completion_tokens = 0;
        std::string stop_reason;  // "stop_sequence", "end_of_text", "max_tokens", "stopped"
    };
    // Decodes the image (at most max_pixels pixels), answers greedily; text streamed through on_text.
    Answer answer(const std::string& image_bytes, const std::string& question, int max_tokens, int64_t max_pixels,
                  const std::function<void(const std::string&)>& on_text, const std::function<bool()>& should_stop);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class AudioAdapter {
public:
    explicit AudioAdapter(const std::string& path);
    ~AudioAdapter();
    struct Tag {
        int64_t index = 0;
        std::string mid, name;
        double score = 0;
    };
    struct Result {
        std::vector<Tag> tags;
        double seconds = 0;  // length of the sound
    };
    // Tags a sound file's bytes (any format libsndfile reads) no longer than max_seconds; top_k <= 0: all classes.
    Result tag(const std::string& sound_bytes, int64_t top_k, double max_seconds);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary::server
