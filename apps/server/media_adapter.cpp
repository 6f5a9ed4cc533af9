// Adapter to aviary::vision (answer_question on decoded, CLIP-preprocessed pixels) and aviary::audio (the sound's
// bytes decoded in memory, then tag_samples). Only this file includes those modules' headers.
#include "media_adapter.h"

#include <ATen/ATen.h>

#include <mutex>

#include "api_error.h"
#include "aviary/core/error.h"

#ifdef AVIARY_SERVER_HAVE_VISION
#include "aviary/vision/image.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/visual_rwkv.h"
#endif
#ifdef AVIARY_SERVER_HAVE_AUDIO
#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/sound_file.h"
#include "aviary/audio/tagger.h"
#endif

namespace aviary::server {

#ifdef AVIARY_SERVER_HAVE_VISION
struct VisionAdapter::Impl {
    std::mutex mutex;
    vision::VisualRwkv model;
    std::unique_ptr<Tokenizer> tokenizer;
    vision::ImagePosition position = vision::ImagePosition::Middle;
};

VisionAdapter::VisionAdapter(const std::string& path, int threads) : impl_(std::make_unique<Impl>()) {
    ModelOptions options;
    options.dtype = "auto";
    options.cpu_engine.threads = threads;
    impl_->model = vision::VisualRwkv::load(path, "", "", options);
    impl_->model.rwkv().train(false);
    // The tokenizer and image place the model was trained with (its metadata), as `aviary vqa` picks them.
    impl_->tokenizer = vision::tokenizer_for(impl_->model);
    impl_->position = vision::image_position_for(impl_->model);
}

VisionAdapter::~VisionAdapter() = default;

VisionAdapter::Answer VisionAdapter::answer(const std::string& image_bytes, const std::string& question, int max_tokens,
                                            int64_t max_pixels, const std::function<void(const std::string&)>& on_text,
                                            const std::function<bool()>& should_stop) {
    at::Tensor rgb;
    try {
        rgb = vision::decode_image(image_bytes, "the image", max_pixels);
    } catch (const Error& e) {
        throw bad_field("messages.content.image_url", std::string("cannot use the image: ") + e.what());
    }
    std::lock_guard<std::mutex> lock(impl_->mutex);
    vision::ClipPreprocess pre;
    pre.size = impl_->model.image_size();
    const at::Tensor pixels = vision::clip_preprocess(rgb, pre);
    vision::AnswerOptions o;
    o.max_tokens = max_tokens;
    o.position = impl_->position;
    const auto r = vision::answer_question(impl_->model, *impl_->tokenizer, pixels, question, o, on_text, should_stop);
    Answer a;
    a.text = r.text;
    a.completion_tokens = r.tokens;
    a.stop_reason = r.stop_reason;
    a.prompt_tokens = r.prompt_tokens;
    return a;
}
#else
struct VisionAdapter::Impl {};
VisionAdapter::VisionAdapter(const std::string& path, int) {
    AVIARY_FAIL("this build has no vision module; cannot load '", path, "' (build with AVIARY_BUILD_VISION=ON)");
}
VisionAdapter::~VisionAdapter() = default;
VisionAdapter::Answer VisionAdapter::answer(const std::string&, const std::string&, int, int64_t,
                                            const std::function<void(const std::string&)>&,
                                            const std::function<bool()>&) {
    return {};
}
#endif

#ifdef AVIARY_SERVER_HAVE_AUDIO
struct AudioAdapter::Impl {
    std::mutex mutex;
    audio::AudioRwkv model;
    explicit Impl(const std::string& path) : model(audio::AudioRwkv::load(path)) {}
};

AudioAdapter::AudioAdapter(const std::string& path) : impl_(std::make_unique<Impl>(path)) {}
AudioAdapter::~AudioAdapter() = default;

AudioAdapter::Result AudioAdapter::tag(const std::string& sound_bytes, int64_t top_k, double max_seconds) {
    // Decoded from memory (libsndfile virtual I/O): no file is written, and messages name "the sound".
    Result out;
    std::vector<float> mono;
    audio::SoundInfo info;
    try {
        mono = audio::decode_sound_mono(sound_bytes.data(), sound_bytes.size(), "the sound", &info);
    } catch (const Error& e) {
        throw bad_field("audio", std::string("cannot use the sound: ") + e.what());
    }
    out.seconds = double(info.frames) / info.sample_rate;
    if (out.seconds > max_seconds)
        throw bad_field("audio", "the sound lasts " + std::to_string(out.seconds) + " s; the limit is " +
                                     std::to_string(max_seconds) + " s");
    std::lock_guard<std::mutex> lock(impl_->mutex);
    for (const auto& t : audio::tag_samples(impl_->model, mono, info.sample_rate, top_k))
        out.tags.push_back({t.index, t.mid, t.name, t.score});
    return out;
}
#else
struct AudioAdapter::Impl {};
AudioAdapter::AudioAdapter(const std::string& path) {
    AVIARY_FAIL("this build has no audio module; cannot load '", path, "' (build with AVIARY_BUILD_AUDIO=ON)");
}
AudioAdapter::~AudioAdapter() = default;
AudioAdapter::Result AudioAdapter::tag(const std::string&, int64_t, double) {
    return {};
}
#endif

}  // namespace aviary::server
