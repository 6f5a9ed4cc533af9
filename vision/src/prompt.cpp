// VisualRWKV-6 prompt assembly and loss masks (spec A.5/A.6, VisualRWKV v6.0 src/dataset.py: preprocess,
// mask_targets, image_position first/middle/last).
#include "aviary/vision/prompt.h"

#include <regex>

#include "aviary/core/error.h"

namespace aviary::vision {

namespace {
const std::string kImage = "<image>";
const std::string kShortAnswer = "Answer the question using a single word or phrase.";

std::string strip(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n\f\v");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r\n\f\v");
    return s.substr(b, e - b + 1);
}
std::string erase_all(std::string s, const std::string& what) {
    for (size_t p; (p = s.find(what)) != std::string::npos;) s.erase(p, what.size());
    return s;
}
}  // namespace

ImagePosition parse_image_position(const std::string& name) {
    if (name == "first") return ImagePosition::First;
    if (name == "middle") return ImagePosition::Middle;
    if (name == "last") return ImagePosition::Last;
    AVIARY_FAIL("unknown image position '", name, "' (expected first, middle or last)");
}

std::string clean_value(const std::string& value) {
    static const std::regex kBlankRun("\n\\s*\n");
    std::string s = strip(value), prev;
    // dataset.py: re.sub(r"\n(\s*\n)+", "\n", …) — repeat until no run is left
    while (s != prev) {
        prev = s;
        s = std::regex_replace(s, kBlankRun, "\n");
    }
    return s;
}

PromptTokens build_prompt(const std::vector<Turn>& turns, ImagePosition position, const Tokenizer& tokenizer,
                          bool open_assistant) {
    int images = 0;
    std::string all_human;  // the "sandwich" text: every human turn, cleaned, joined by "\n"
    for (const auto& t : turns) {
        AVIARY_CHECK(t.from == "human" || t.from == "gpt", "conversation role '", t.from, "' (expected human or gpt)");
        for (size_t p = t.value.find(kImage); p != std::string::npos; p = t.value.find(kImage, p + 1)) ++images;
        if (t.from == "human") {
            const std::string v = clean_value(erase_all(erase_all(t.value, kImage), kShortAnswer));
            if (!v.empty()) all_human += (all_human.empty() ? "" : "\n") + v;
        }
    }
    AVIARY_CHECK(images <= 1, "a conversation has ", images, " <image> tags; at most one is supported");
    const int32_t n_assistant = int32_t(tokenizer.encode("Assistant:").size());
    PromptTokens out;
    auto append = [&](const std::string& text, bool supervised, int masked_head) {
        auto ids = tokenizer.encode(text);
        for (size_t i = 0; i < ids.size(); ++i) {
            out.ids.push_back(ids[i]);
            out.supervised.push_back(supervised && int(i) >= masked_head ? 1 : 0);
        }
    };
    std::vector<Turn> all = turns;
    if (open_assistant) all.push_back({"gpt", ""});
    for (size_t i = 0; i < all.size(); ++i) {
        const auto& t = all[i];
        const bool last_open = open_assistant && i + 1 == all.size();
        if (t.from == "gpt") {
            if (last_open)
                append("Assistant:", false, 0);
            else
                append("Assistant: " + clean_value(t.value) + "\n\n", true, n_assistant);
            continue;
        }
        const bool has_image = t.value.find(kImage) != std::string::npos;
        const std::string text = clean_value(erase_all(t.value, kImage));
        if (!has_image) {
            append("User: " + text + "\n\n", false, 0);
            continue;
        }
        // "{before}<image>{after}" in the human turn, tokenized in pieces around the image
        std::string before, after;
        switch (position) {
            case ImagePosition::First:
                before = "";
                after = "\n" + text;
                break;
            case ImagePosition::Middle:
                before = all_human + "\n";
                after = "\n" + text;
                break;
            case ImagePosition::Last:
                before = text + "\n";
                after = "";
                break;
        }
        append("User: " + before, false, 0);
        out.image_at = int64_t(out.ids.size());
        append(after + "\n\n", false, 0);
    }
    return out;
}

PromptTokens question_prompt(const std::string& question, ImagePosition position, const Tokenizer& tokenizer) {
    return build_prompt({{"human", kImage + "\n" + question}}, position, tokenizer, /*open_assistant=*/true);
}

}  // namespace aviary::vision
