// The frozen-CLIP feature cache (feature_cache.h): CLIP features of every image of a LLaVA data set in one
// safetensors file, keyed by the image's relative path and stamped with a fingerprint of the CLIP weights.
#include "aviary/vision/feature_cache.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "aviary/vision/image.h"

namespace aviary::vision {

namespace fs = std::filesystem;

namespace {

std::string fingerprint(const ClipVision& vit) {
    torch::NoGradGuard ng;
    double s = 0, s2 = 0;
    for (const auto& t : vit.state_dict()) {
        s += t.tensor.to(at::kDouble).sum().item<double>();
        s2 += t.tensor.to(at::kDouble).abs().sum().item<double>();
    }
    std::ostringstream os;
    os.precision(17);
    os << vit.config().image_size << "/" << vit.config().hidden << "/" << vit.config().layers << "/" << s << "/" << s2;
    return os.str();
}

}  // namespace

FeatureCache FeatureCache::build(const std::string& path, const ClipVision& vit, const std::vector<LlavaSample>& data,
                                 const std::string& image_folder,
                                 const std::function<bool(int64_t, int64_t)>& on_progress) {
    std::vector<std::string> images;
    for (const auto& s : data)
        if (!s.image.empty()) images.push_back(s.image);
    std::sort(images.begin(), images.end());
    images.erase(std::unique(images.begin(), images.end()), images.end());
    const std::string fp = fingerprint(vit);
    FeatureCache c;
    std::error_code ec;
    if (!path.empty() && fs::exists(path, ec)) {
        Metadata meta;
        TensorList t = read_safetensors(path, &meta);
        if (meta["clip_fingerprint"] == fp) {
            for (auto& x : t) c.features_[x.name] = x.tensor;
            bool all = true;
            for (const auto& im : images) all = all && c.features_.count(im);
            if (all) {
                c.loaded_ = true;
                return c;
            }
        }
        c.features_.clear();
    }
    ClipPreprocess pre;
    pre.size = vit.config().image_size;
    torch::NoGradGuard ng;
    constexpr int64_t kBatch = 16;
    for (size_t i = 0; i < images.size(); i += kBatch) {
        std::vector<at::Tensor> px;
        const size_t end = std::min(images.size(), i + kBatch);
        for (size_t k = i; k < end; ++k) px.push_back(load_clip_image(llava_image_path(image_folder, images[k]), pre));
        at::Tensor f = vit.features(torch::stack(px));  // (b, P + 1, C)
        for (size_t k = i; k < end; ++k) c.features_[images[k]] = f[int64_t(k - i)].clone();
        if (on_progress && !on_progress(int64_t(end), int64_t(images.size()))) AVIARY_FAIL("cancelled");
    }
    if (!path.empty()) {
        TensorList out;
        for (auto& [k, v] : c.features_) out.push_back({k, v});
        write_safetensors(path, out, {{"clip_fingerprint", fp}, {"image_folder", image_folder}});
    }
    return c;
}

const at::Tensor& FeatureCache::get(const std::string& image) const {
    auto it = features_.find(image);
    AVIARY_CHECK(it != features_.end(), "no cached CLIP features for image '", image, "'");
    return it->second;
}

}  // namespace aviary::vision
