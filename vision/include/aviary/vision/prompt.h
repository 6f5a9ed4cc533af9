// VisualRWKV-6 conversation prompts and loss masks (spec A.5, A.6; VisualRWKV v6.0 src/dataset.py): roles
// "User"/"Assistant", turns "{Role}: {value}\n\n", values stripped with blank-line runs collapsed, the image
// placed first / middle ("sandwich": all human text, "\n<image>\n", the turn's text) / last in its human turn;
// tokens of human turns and the leading "Assistant:" tokens carry no loss. Text is tokenized by a core Tokenizer
// (World, or byte for byte-level models; vision::tokenizer_for in visual_rwkv.h picks it for a model).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "aviary/core/tokenizer.h"

namespace aviary::vision {

enum class ImagePosition { First, Middle, Last };
ImagePosition parse_image_position(const std::string& name);  // "first" | "middle" | "last"

struct Turn {
    std::string from;   // "human" or "gpt"
    std::string value;  // may contain "<image>" (human turns; at most one in a conversation)
};

// Strip and collapse every run of blank lines ("\n", whitespace, "\n" …) into one "\n" (dataset.py).
std::string clean_value(const std::string& value);

// A tokenized conversation: text ids with the image's place among them and the supervised positions.
struct PromptTokens {
    std::vector<int32_t> ids;
    std::vector<uint8_t> supervised;  // per id: 1 = its prediction is trained
    int64_t image_at = -1;            // the image rows go before ids[image_at]; −1: no image
};
// Renders and tokenizes turn by turn. With `open_assistant`, an "Assistant:" turn with no value is appended
// (inference). The suffix "Answer the question using a single word or phrase." is dropped from the middle
// position's human text, as the official code does. More than one <image> is an error.
PromptTokens build_prompt(const std::vector<Turn>& turns, ImagePosition position, const Tokenizer& tokenizer,
                          bool open_assistant);
// The single-question inference prompt: human "<image>\n{question}", open assistant turn.
PromptTokens question_prompt(const std::string& question, ImagePosition position, const Tokenizer& tokenizer);

}  // namespace aviary::vision
