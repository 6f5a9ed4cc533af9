// LLaVA-format conversation data (spec A.8): a JSON list or JSONL of {"id", "image", "conversations": [{"from",
// "value"}, …]} items, read for VisualRWKV training (vision_train.h) and VQA evaluation (vqa_eval.h).
#pragma once
#include <string>
#include <vector>

#include "aviary/vision/prompt.h"

namespace aviary::vision {

// One LLaVA item: {"id", "image" (optional, relative to the image folder), "conversations": [{"from", "value"}]}.
struct LlavaSample {
    std::string id;
    std::string image;  // empty: text-only
    std::vector<Turn> turns;
};
// Reads a LLaVA JSON list (or JSONL, one item per line); errors name the file and item.
std::vector<LlavaSample> read_llava(const std::string& path);
// The same for the file's text already in memory (read_llava reads the file and calls this); errors name `path`.
std::vector<LlavaSample> parse_llava(const std::string& text, const std::string& path);
// The whole of a data file (read_llava, read_vqa); `what` names it in the error when it is missing or unreadable.
std::string read_text_file(const std::string& path, const char* what);

// The file of an item's image: `image` under `image_folder`, or `image` as it is when the folder is empty.
std::string llava_image_path(const std::string& image_folder, const std::string& image);

}  // namespace aviary::vision
