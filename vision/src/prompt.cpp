// VisualRWKV-6 prompt assembly and loss masks (spec A.5/A.6, VisualRWKV v6.0 src/dataset.py: preprocess,
// mask_targets, image_position first/middle/last).
#include "aviary/vision/prompt.h"

#include <regex>

#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

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

TextCodec make_text_codec(const std::string& kind, const std::string& vocab_path) {
    TextCodec c;
    c.kind = kind;
    if (kind == "byte") {
        c.vocab_size = 256;
        c.encode = [](std::string_view s) {
            std::vector<int32_t> ids;
            for (unsigned char ch : s) ids.push_back(ch);
            return ids;
        };
        c.token_bytes = [](int32_t id) { return id > 0 && id < 256 ? std::string(1, char(id)) : std::string(); };
        return c;
    }
    AVIARY_CHECK(kind == "world", "unknown tokenizer '", kind, "' (expected world or byte)");
    auto tok = std::make_shared<WorldTokenizer>(
        WorldTokenizer::load(vocab_path.empty() ? WorldTokenizer::default_vocab_path() : vocab_path));
    c.vocab_size = 65536;
    c.encode = [tok](std::string_view s) { return tok->encode(s); };
    c.token_bytes = [tok](int32_t id) { return id == 0 ? std::string() : tok->token_bytes(id); };
    return c;
}

TextCodec text_codec_for_vocab(int64_t vocab_size, const std::string& vocab_path) {
    return make_text_codec(vocab_size <= 256 ? "byte" : "world", vocab_path);
}

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

PromptTokens build_prompt(const std::vector<Turn>& turns, ImagePosition position, const TextCodec& codec,
                          bool open_assistant) {
    int images = 0;
    std::string all_human;  // the "sandwich" text: every human turn, cleaned, joined by "\n"
    for (const auto& t : turns) {
        AVIARY_CHECK(t.from == "human" || t.from == "gpt", "conversation role '", t.from,
                     "' (expected human or gpt)");
        for (size_t p = t.value.find(kImage); p != std::string::npos; p = t.value.find(kImage, p + 1)) ++images;
        if (t.from == "human") {
            const std::string v = clean_value(erase_all(erase_all(t.value, kImage), kShortAnswer));
            if (!v.empty()) all_human += (all_human.empty() ? "" : "\n") + v;
        }
    }
    AVIARY_CHECK(images <= 1, "a conversation has ", images, " <image> tags; at most one is supported");
    const int32_t n_assistant = int32_t(codec.encode("Assistant:").size());
    PromptTokens out;
    auto append = [&](const std::string& text, bool supervised, int masked_head) {
        auto ids = codec.encode(text);
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
            if (last_open) append("Assistant:", false, 0);
            else append("Assistant: " + clean_value(t.value) + "\n\n", true, n_assistant);
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
            case ImagePosition::First: before = ""; after = "\n" + text; break;
            case ImagePosition::Middle: before = all_human + "\n"; after = "\n" + text; break;
            case ImagePosition::Last: before = text + "\n"; after = ""; break;
        }
        append("User: " + before, false, 0);
        out.image_at = int64_t(out.ids.size());
        append(after + "\n\n", false, 0);
    }
    return out;
}

PromptTokens question_prompt(const std::string& question, ImagePosition position, const TextCodec& codec) {
    return build_prompt({{"human", kImage + "\n" + question}}, position, codec, /*open_assistant=*/true);
}

}  // namespace aviary::vision
