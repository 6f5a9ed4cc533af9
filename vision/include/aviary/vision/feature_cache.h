// The frozen-CLIP feature cache of VisualRWKV training stages 1 and 2 (vision_train.h): CLIP runs once per image of
// a data set and the features live on disk, so neither stage runs CLIP again.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "aviary/vision/clip_vit.h"
#include "aviary/vision/llava_data.h"

namespace aviary::vision {

// CLIP features (P + 1, C), VisualRWKV order, of every image a data set names, computed once with the frozen CLIP
// and kept in `path` (safetensors keyed by the image's relative path, with a fingerprint of the CLIP weights and
// the preprocessing; a stale or foreign cache is rebuilt). on_progress(done, total) may return false to cancel.
class FeatureCache {
public:
    static FeatureCache build(const std::string& path, const ClipVision& vit, const std::vector<LlavaSample>& data,
                              const std::string& image_folder,
                              const std::function<bool(int64_t, int64_t)>& on_progress = {});
    const at::Tensor& get(const std::string& image) const;  // error when absent
    int64_t size() const { return int64_t(features_.size()); }
    bool loaded_from_disk() const { return loaded_; }

private:
    std::map<std::string, at::Tensor> features_;
    bool loaded_ = false;
};

}  // namespace aviary::vision
