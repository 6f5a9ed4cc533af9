// What the Image QA and Audio panels need from a model, behind small interfaces the worker owns, so the
// panels work (viewing, preprocessing preview, spectrogram) while the vision/audio modules are not in the
// build, and say so instead of pretending. The worker picks the module-backed implementation when
// aviary::vision / aviary::audio provide one (see studio_worker.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "studio_events.h"

namespace aviary::studio {

class VisionBackend {
public:
    virtual ~VisionBackend() = default;
    virtual bool available() const = 0;
    virtual std::string status() const = 0;  // shown in the panel, e.g. why no model is available
    // The model's input image (what the model "sees").
    virtual ImageRGBA preprocess(const ImageRGBA& image) const = 0;
    // Streams the answer to a question about the image; throws aviary::Error when unavailable.
    virtual void answer(const ImageRGBA& image, const std::string& question,
                        const std::function<void(const std::string&)>& on_text,
                        const std::function<bool()>& should_stop) = 0;
};

class AudioBackend {
public:
    virtual ~AudioBackend() = default;
    virtual bool available() const = 0;
    virtual std::string status() const = 0;
    // (label, score) for every class, any order; throws aviary::Error when unavailable.
    virtual std::vector<std::pair<std::string, float>> tag(const std::vector<float>& samples, int sample_rate) = 0;
};

// The backends of this build: without the vision/audio model code they preview the CLIP-style crop and
// report "model not available in this build".
std::unique_ptr<VisionBackend> make_vision_backend();
std::unique_ptr<AudioBackend> make_audio_backend();

}  // namespace aviary::studio
