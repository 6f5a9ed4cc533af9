// What the Image QA and Audio panels need from a model, behind small interfaces the worker owns, so the
// panels work (viewing, preprocessing preview, spectrogram) whatever the build holds, and say what is missing
// instead of pretending. With the vision module in the build (AVIARY_HAVE_VISION) the image backend decodes and
// preprocesses with aviary::vision (CLIP preprocessing with HF parity) and answers with VisualRWKV. The audio module
// is always in a studio build: tags come from an AudioRWKV model through audio::tag_samples on the samples the panel
// holds (no file written), and the spectrogram uses the loaded model's front end.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "studio_events.h"

namespace aviary::audio {
struct AudioRwkvConfig;
}

namespace aviary::studio {

// What one answer cost, the numbers `aviary vqa --stats` prints (seconds; load_s is the last model load's).
struct VqaStats {
    double load_s = 0, image_s = 0, prefill_s = 0, decode_s = 0, ttft_s = 0, peak_rss_mb = 0;
    int64_t tokens = 0;
};
// One line for the Image QA panel, e.g. "load 0.41 s · image 0.02 s · prefill 0.01 s · decode 0.05 s (8 tokens) ·
// first token 0.03 s · peak 612 MB".
std::string format_vqa_stats(const VqaStats& s);

class VisionBackend {
public:
    virtual ~VisionBackend() = default;
    virtual bool available() const = 0;  // a model is loaded and can answer
    // Shown in the panel: what is loaded, or why questions cannot be answered. Safe to call from the UI thread.
    virtual std::string status() const = 0;
    // Decodes an image file for display and for the model (throws aviary::Error naming the file).
    virtual ImageRGBA decode(const std::string& path) const;
    // The model's input image (what the model "sees"), as RGBA for display.
    virtual ImageRGBA preprocess(const ImageRGBA& image) const = 0;
    // Loads a model; returns a description. The default: not available in this build.
    virtual std::string load(const std::string& model_path, const std::string& clip_path, const std::string& proj_path);
    // The shipped demo model, or "" when there is none.
    virtual std::string default_model() const { return ""; }
    // Streams the answer to a question about the image and returns what it cost (preprocessing counts in image_s
    // and ttft_s); throws aviary::Error when no model is loaded.
    virtual VqaStats answer(const ImageRGBA& image, const std::string& question, int max_tokens,
                            const std::function<void(const std::string&)>& on_text,
                            const std::function<bool()>& should_stop) = 0;
};

class AudioBackend {
public:
    virtual ~AudioBackend() = default;
    virtual bool available() const = 0;
    virtual std::string status() const = 0;  // safe to call from the UI thread
    // Loads a tagging model; returns a description.
    virtual std::string load(const std::string& model_path) = 0;
    virtual std::string default_model() const = 0;
    // The loaded model's configuration (its front end and clip), null when none is loaded (worker thread only).
    virtual const audio::AudioRwkvConfig* config() const = 0;
    // (label, score) for every class, any order, of mono `samples` at `sample_rate`; throws aviary::Error when no
    // model is loaded.
    virtual std::vector<std::pair<std::string, float>> tag(const std::vector<float>& samples, int sample_rate) = 0;
};

std::unique_ptr<VisionBackend> make_vision_backend();
std::unique_ptr<AudioBackend> make_audio_backend();

}  // namespace aviary::studio
