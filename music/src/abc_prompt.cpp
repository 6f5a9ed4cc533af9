// ABC byte framing and prompts (multimodal_spec.md C.2–C.3, ChatRWKV music/run.py): id = byte, BOS 2,
// EOS 3, decode drops ids <= 3; the prompt is chr(2) + header fields (+ control codes, + opening bars).
#include "aviary/core/error.h"
#include "aviary/music/abc.h"

namespace aviary::music {
namespace {

void check_field(const std::string& name, const std::string& value) {
    for (size_t i = 0; i < value.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(value[i]);
        AVIARY_CHECK(c >= 32 && c < 127, "the ", name, " field must be printable ASCII on one line; byte ", int(c),
                     " at position ", i, " of '", value, "'");
    }
}

}  // namespace

std::string build_prompt(const PromptOptions& o) {
    check_field("T:", o.title);
    check_field("M:", o.meter);
    check_field("L:", o.length);
    check_field("K:", o.key);
    for (char c : o.control_codes + o.bars) {
        const unsigned char u = static_cast<unsigned char>(c);
        AVIARY_CHECK(u == '\n' || (u >= 32 && u < 127), "control codes and bars must be ASCII; found byte ", int(u));
    }
    std::string p(1, char(kBos));
    if (o.with_x) p += "X:1\n";
    p += o.control_codes;
    if (!o.control_codes.empty() && o.control_codes.back() != '\n') p += '\n';
    if (!o.title.empty()) p += "T:" + o.title + "\n";
    // Fields are written in header order; once one is left to the model, the later ones are left too
    // (otherwise the model would have to write a field before one already given).
    if (o.meter.empty()) return p;
    p += "M:" + o.meter + "\n";
    if (o.length.empty()) return p;
    p += "L:" + o.length + "\n";
    if (o.key.empty()) return p;
    p += "K:" + o.key + "\n";
    p += o.bars;
    return p;
}

std::vector<int32_t> encode_abc(std::string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const bool framing = (c == kBos || c == kEos);
        AVIARY_CHECK(c < 128 && (c >= 32 || c == '\n' || c == '\t' || c == '\r' || framing),
                     "ABC text must be 7-bit ASCII (the music models' alphabet); byte ", int(c), " at position ", i);
    }
    return ByteTokenizer().encode(text);
}

std::string frame_tune(std::string_view abc) {
    std::string s(1, char(kBos));
    s.append(abc);
    s += char(kEos);
    return s;
}

std::string to_abc_file_text(std::string_view generated) {
    std::string s;
    for (char c : generated)
        if (static_cast<unsigned char>(c) > kEos) s += c;
    if (s.rfind("X:", 0) != 0) s = "X:1\n" + s;
    if (s.empty() || s.back() != '\n') s += '\n';
    return s;
}

}  // namespace aviary::music
