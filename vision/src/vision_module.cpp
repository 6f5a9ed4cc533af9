// aviary::vision: what this build of the module contains (vision.h).
#include "aviary/vision/vision.h"
namespace aviary::vision {
const char* module_status() {
    return "vision: CLIP ViT (HF/OpenAI weights), VisualRWKV-6 VQA, two-stage training";
}
}  // namespace aviary::vision
