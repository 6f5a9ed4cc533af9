// The Image QA / Audio backends of this build (backends.h). Vision: aviary::vision when the module is built
// (image decoding with EXIF orientation, CLIP preprocessing and its inverse for the preview, VisualRWKV answers
// streamed token by token, the tokenizer and image place from the model's metadata), else a preview with OpenCV.
// Audio: aviary::audio's tag_samples with an AudioRWKV model.
#include "backends.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>

#include "aviary/core/error.h"
#include "aviary/core/process_stats.h"
#include "media.h"

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/tagger.h"

#ifdef AVIARY_HAVE_VISION
#include <ATen/ATen.h>

#include "aviary/vision/image.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/visual_rwkv.h"
#endif

namespace aviary::studio {

ImageRGBA VisionBackend::decode(const std::string& path) const {
    return load_image_rgba(path);
}

std::string VisionBackend::load(const std::string&, const std::string&, const std::string&) {
    AVIARY_FAIL("VQA model not available in this build (the studio was built without the vision module)");
}

std::string format_vqa_stats(const VqaStats& s) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "load %.2f s · image %.2f s · prefill %.2f s · decode %.2f s (%lld tokens) · first token %.2f s · "
                  "peak %.0f MB",
                  s.load_s, s.image_s, s.prefill_s, s.decode_s, static_cast<long long>(s.tokens), s.ttft_s,
                  s.peak_rss_mb);
    return line;
}

namespace {

class PreviewVisionBackend : public VisionBackend {
public:
    bool available() const override { return false; }
    std::string status() const override {
        return "VQA model not available in this build (built without the vision module): the image view and a "
               "CLIP-style 224x224 preprocessing preview work; questions cannot be answered.";
    }
    ImageRGBA preprocess(const ImageRGBA& image) const override { return clip_preview_crop(image, 224); }
    VqaStats answer(const ImageRGBA&, const std::string&, int, const std::function<void(const std::string&)>&,
                    const std::function<bool()>&) override {
        AVIARY_FAIL("VQA model not available in this build (built without the vision module)");
    }
};

#ifdef AVIARY_HAVE_VISION
// RGBA8 -> RGB uint8 tensor (H, W, 3).
at::Tensor rgb_tensor(const ImageRGBA& image) {
    at::Tensor rgba = at::from_blob(const_cast<uint8_t*>(image.rgba.data()), {image.height, image.width, 4}, at::kByte);
    return rgba.slice(2, 0, 3).contiguous();
}

ImageRGBA rgba_from_rgb(const at::Tensor& rgb_in) {
    const at::Tensor rgb = rgb_in.contiguous();  // (H, W, 3) uint8
    ImageRGBA out;
    out.height = int(rgb.size(0)), out.width = int(rgb.size(1));
    out.rgba.resize(size_t(out.width) * out.height * 4);
    const uint8_t* p = rgb.data_ptr<uint8_t>();
    for (size_t i = 0; i < size_t(out.width) * out.height; ++i) {
        out.rgba[4 * i] = p[3 * i], out.rgba[4 * i + 1] = p[3 * i + 1], out.rgba[4 * i + 2] = p[3 * i + 2];
        out.rgba[4 * i + 3] = 255;
    }
    return out;
}

class ModuleVisionBackend : public VisionBackend {
public:
    bool available() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return !description_.empty();
    }
    std::string status() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!description_.empty()) return "VisualRWKV: " + description_ + " (greedy answers, stop at a blank line)";
        return "No VQA model loaded: give a VisualRWKV checkpoint above (one file with rwkv./vit./proj. keys, or an "
               "RWKV file plus CLIP and projector files). The preview shows CLIP preprocessing at 224 px.";
    }
    ImageRGBA decode(const std::string& path) const override { return rgba_from_rgb(vision::load_image(path)); }
    ImageRGBA preprocess(const ImageRGBA& image) const override {
        vision::ClipPreprocess o;
        o.size = model_ ? model_->image_size() : 224;
        const at::Tensor px = vision::clip_preprocess(rgb_tensor(image), o);  // (3, S, S) normalised
        return rgba_from_rgb(vision::clip_pixels_to_rgb(px, o));              // back to codes for display
    }
    std::string load(const std::string& model_path, const std::string& clip_path,
                     const std::string& proj_path) override {
        const auto t0 = std::chrono::steady_clock::now();
        ModelOptions options;
        options.dtype = "auto";  // the file's precision: a bf16 file stays bf16 in memory, as `aviary vqa` keeps it
        vision::VisualRwkv m = vision::VisualRwkv::load(model_path, clip_path, proj_path, options);
        tokenizer_ = vision::tokenizer_for(m);  // as `aviary vqa` picks it
        model_.emplace(std::move(m));
        load_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const ModelConfig& c = model_->rwkv().config();
        std::string desc = model_path.substr(model_path.find_last_of('/') + 1) + " (RWKV v" + c.version_string() +
                           ", " + std::to_string(c.n_layer) + " layers, D " + std::to_string(c.n_embd) + ", " +
                           tokenizer_->kind() + " tokenizer; CLIP " + std::to_string(model_->image_size()) + " px, " +
                           std::to_string(model_->image_rows()) + " image rows)";
        std::lock_guard<std::mutex> lock(mutex_);
        description_ = desc;
        return desc;
    }
    std::string default_model() const override {
        try {
            return vision::default_model_path();
        } catch (const std::exception&) {
            return "";
        }
    }
    VqaStats answer(const ImageRGBA& image, const std::string& question, int max_tokens,
                    const std::function<void(const std::string&)>& on_text,
                    const std::function<bool()>& should_stop) override {
        AVIARY_CHECK(model_, "no VQA model loaded: load a VisualRWKV checkpoint first");
        vision::AnswerOptions ao;
        ao.started = std::chrono::steady_clock::now();  // the preprocessing counts in image_s, as in `aviary vqa`
        vision::ClipPreprocess o;
        o.size = model_->image_size();
        const at::Tensor px = vision::clip_preprocess(rgb_tensor(image), o);
        ao.max_tokens = max_tokens;
        ao.position = vision::image_position_for(*model_);  // the model's training place, as `aviary vqa` picks it
        const vision::AnswerResult r =
            vision::answer_question(*model_, *tokenizer_, px, question, ao, on_text, should_stop);
        VqaStats s;
        s.load_s = load_s_, s.image_s = r.timings.image_s, s.prefill_s = r.timings.prefill_s;
        s.decode_s = r.timings.decode_s, s.ttft_s = r.timings.ttft_s, s.tokens = r.tokens;
        s.peak_rss_mb = peak_rss_mb();
        return s;
    }

private:
    std::optional<vision::VisualRwkv> model_;  // worker thread only
    double load_s_ = 0;
    std::unique_ptr<Tokenizer> tokenizer_;
    mutable std::mutex mutex_;
    std::string description_;  // guarded: status() is read by the UI thread
};
#endif

class ModuleAudioBackend : public AudioBackend {
public:
    bool available() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return !description_.empty();
    }
    std::string status() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!description_.empty()) return "AudioRWKV: " + description_;
        return "No tagging model loaded: give an AudioRWKV .safetensors above (aviary train audio writes one). "
               "Waveform and spectrogram work without it.";
    }
    std::string load(const std::string& model_path) override {
        audio::AudioRwkv m = audio::AudioRwkv::load(model_path);
        const audio::AudioRwkvConfig& c = m.config();
        char buf[160];
        std::snprintf(buf, sizeof buf, " (%lld layers, D %lld, %lld classes, %d Hz, %.1f s clips)",
                      static_cast<long long>(c.n_layer), static_cast<long long>(c.n_embd),
                      static_cast<long long>(c.n_classes), c.sample_rate, c.clip_seconds);
        const std::string desc = model_path.substr(model_path.find_last_of('/') + 1) + buf;
        model_.emplace(std::move(m));
        std::lock_guard<std::mutex> lock(mutex_);
        description_ = desc;
        return desc;
    }
    std::string default_model() const override {
        try {
            return audio::default_model_path();
        } catch (const std::exception&) {
            return "";
        }
    }
    const audio::AudioRwkvConfig* config() const override { return model_ ? &model_->config() : nullptr; }
    std::vector<std::pair<std::string, float>> tag(const std::vector<float>& samples, int sample_rate) override {
        AVIARY_CHECK(model_, "no tagging model loaded: load an AudioRWKV model first");
        std::vector<std::pair<std::string, float>> out;
        for (const auto& t : audio::tag_samples(*model_, samples, sample_rate, 0))
            out.emplace_back(t.name, float(t.score));
        return out;
    }

private:
    std::optional<audio::AudioRwkv> model_;  // worker thread only
    mutable std::mutex mutex_;
    std::string description_;
};

}  // namespace

std::unique_ptr<VisionBackend> make_vision_backend() {
#ifdef AVIARY_HAVE_VISION
    return std::make_unique<ModuleVisionBackend>();
#else
    return std::make_unique<PreviewVisionBackend>();
#endif
}
std::unique_ptr<AudioBackend> make_audio_backend() {
    return std::make_unique<ModuleAudioBackend>();
}

}  // namespace aviary::studio
