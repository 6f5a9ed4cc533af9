// The worker's Image channel (studio_worker.h): the VQA model, images (a file or the test pattern) with the model's
// input preview, and answers streamed from the vision backend (backends.h).
#include "studio_worker.h"

#include "aviary/core/error.h"
#include "backends.h"
#include "media.h"

namespace aviary::studio {

void StudioWorker::load_vision_model(const std::string& model_path, const std::string& clip_path,
                                     const std::string& proj_path) {
    post("load VQA model", Channel::Image, [=] {
        emit(EventKind::Log, Channel::Image, "loading VQA model '" + model_path + "'");
        const std::string desc = vision_->load(model_path, clip_path, proj_path);
        emit(EventKind::ModelLoaded, Channel::Image, desc);
        if (image_) {  // the preview now shows this model's input size
            Event e;
            e.kind = EventKind::ImageReady, e.channel = Channel::Image, e.text = "(re-preprocessed for the model)";
            e.image = image_;
            e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*image_));
            events_.push(std::move(e));
        }
    });
}

std::string StudioWorker::vision_default_model() const {
    return vision_->default_model();
}

void StudioWorker::open_image(const std::string& path) {
    post("open image", Channel::Image, [=] {
        auto img = std::make_shared<ImageRGBA>(vision_->decode(path));
        Event e;
        e.kind = EventKind::ImageReady, e.channel = Channel::Image;
        e.text = path + " (" + std::to_string(img->width) + "x" + std::to_string(img->height) + ")";
        e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*img));
        e.image = img;
        image_ = img;
        events_.push(std::move(e));
    });
}

void StudioWorker::demo_image() {
    post("test pattern", Channel::Image, [=] {
        auto img = std::make_shared<ImageRGBA>(demo_test_pattern());
        Event e;
        e.kind = EventKind::ImageReady, e.channel = Channel::Image;
        e.text = "test pattern (640x480)";
        e.image2 = std::make_shared<ImageRGBA>(vision_->preprocess(*img));
        e.image = img;
        image_ = img;
        events_.push(std::move(e));
    });
}

void StudioWorker::ask_image(const std::string& question, int max_tokens) {
    post("ask", Channel::Image, [=] {
        AVIARY_CHECK(image_, "open an image first");
        AVIARY_CHECK(!question.empty(), "the question is empty");
        const VqaStats st = vision_->answer(
            *image_, question, max_tokens,
            [&](const std::string& piece) { emit(EventKind::Text, Channel::Image, piece); },
            [this] { return should_stop(); });
        emit(EventKind::Stats, Channel::Image, format_vqa_stats(st), st.ttft_s, st.peak_rss_mb, st.tokens);
        emit(EventKind::Done, Channel::Image, should_stop() ? "stopped" : "done", 0, 0, st.tokens);
    });
}

std::string StudioWorker::vision_status() const {
    return vision_->status();
}

}  // namespace aviary::studio
