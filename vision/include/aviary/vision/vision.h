// aviary::vision public API: image input and CLIP preprocessing (image.h), the CLIP ViT (clip_vit.h), VisualRWKV
// prompts, forward and answers (visual_rwkv.h), LLaVA data (llava_data.h), the CLIP feature cache (feature_cache.h),
// training stages (vision_train.h), VQA scoring (vqa_eval.h). This header also reports what the module contains.
#pragma once
namespace aviary::vision {
// Name and state of the module, e.g. for `aviary info --build`.
const char* module_status();
}  // namespace aviary::vision
