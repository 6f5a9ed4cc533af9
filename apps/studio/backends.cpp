// The Image QA / Audio backends of this build (backends.h). The vision and audio modules have no model API
// yet (their public headers only report module_status), so the panels get preview-only backends.
#include "backends.h"

#include "aviary/core/error.h"
#include "media.h"

namespace aviary::studio {

namespace {
class PreviewVisionBackend : public VisionBackend {
public:
    bool available() const override { return false; }
    std::string status() const override {
        return "VQA model not available in this build (the vision module has no model API yet): the image view "
               "and the CLIP-style 224x224 preprocessing preview work; questions cannot be answered.";
    }
    ImageRGBA preprocess(const ImageRGBA& image) const override { return clip_preview_crop(image, 224); }
    void answer(const ImageRGBA&, const std::string&, const std::function<void(const std::string&)>&,
                const std::function<bool()>&) override {
        AVIARY_FAIL("VQA model not available in this build (the vision module has no model API yet)");
    }
};

class PreviewAudioBackend : public AudioBackend {
public:
    bool available() const override { return false; }
    std::string status() const override {
        return "Tagging model not available in this build (the audio module has no model API yet): waveform and "
               "log-mel spectrogram work; tags cannot be computed.";
    }
    std::vector<std::pair<std::string, float>> tag(const std::vector<float>&, int) override {
        AVIARY_FAIL("audio tagging model not available in this build (the audio module has no model API yet)");
    }
};
}  // namespace

std::unique_ptr<VisionBackend> make_vision_backend() { return std::make_unique<PreviewVisionBackend>(); }
std::unique_ptr<AudioBackend> make_audio_backend() { return std::make_unique<PreviewAudioBackend>(); }

}  // namespace aviary::studio
