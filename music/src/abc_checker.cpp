// Structural ABC checker (ABC 2.1 §3: the header starts with X: and ends with K:; M:, L: precede K:): required
// headers, a body with bar lines, balanced chord brackets/quotes per line and slurs/grace groups per tune,
// repeat signs. It is a quick sanity check; abc_tools.h asks abc2midi for the real verdict.
#include <cctype>

#include "aviary/music/abc.h"

namespace aviary::music {
namespace {

bool is_field_line(std::string_view line) {
    return line.size() >= 2 && std::isalpha(static_cast<unsigned char>(line[0])) && line[1] == ':';
}

}  // namespace

AbcCheck check_abc(std::string_view abc_in) {
    AbcCheck r;
    std::string abc;
    for (size_t i = 0; i < abc_in.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(abc_in[i]);
        if (c == kBos || c == kEos) continue;
        if (c >= 128) {
            r.errors.push_back("non-ASCII byte " + std::to_string(int(c)) + " at position " + std::to_string(i));
            return r;
        }
        abc += char(c);
    }
    std::vector<std::string> lines;
    for (size_t pos = 0; pos <= abc.size();) {
        size_t end = abc.find('\n', pos);
        if (end == std::string::npos) end = abc.size();
        std::string line = abc.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const size_t pct = line.find('%');  // comments
        if (pct != std::string::npos) line.resize(pct);
        lines.push_back(line);
        pos = end + 1;
    }
    size_t i = 0;
    while (i < lines.size() && lines[i].find_first_not_of(" \t") == std::string::npos) ++i;
    if (i == lines.size()) {
        r.errors.push_back("empty tune");
        return r;
    }
    if (lines[i].rfind("X:", 0) != 0) r.errors.push_back("the tune must start with an X: line");
    bool has_m = false, has_l = false, has_k = false;
    for (; i < lines.size(); ++i) {
        const std::string& l = lines[i];
        if (l.empty()) continue;
        if (!is_field_line(l)) {
            r.errors.push_back("music before the K: line that ends the header: '" + l.substr(0, 40) + "'");
            break;
        }
        has_m |= l[0] == 'M';
        has_l |= l[0] == 'L';
        if (l[0] == 'K') {
            has_k = true;
            ++i;
            break;
        }
    }
    if (!has_m) r.errors.push_back("missing M: (meter) header");
    if (!has_l) r.warnings.push_back("missing L: header (the default note length follows from M:)");
    if (!has_k) r.errors.push_back("missing K: (key) header");
    int paren = 0, brace = 0, repeat_open = 0, repeat_close = 0;
    size_t body_bytes = 0;
    for (; has_k && i < lines.size(); ++i) {
        const std::string& l = lines[i];
        if (l.empty() || is_field_line(l)) continue;  // inline fields (K:, M:, w: …)
        body_bytes += l.size();
        int quotes = 0, square = 0;
        for (size_t k = 0; k < l.size(); ++k) {
            const char c = l[k];
            if (c == '"') {
                ++quotes;
                continue;
            }
            if (quotes % 2) continue;  // inside a chord symbol or annotation
            if (c == '(') ++paren;
            if (c == ')') --paren;
            if (c == '{') ++brace;
            if (c == '}') --brace;
            if (c == '[') ++square;
            if (c == ']') --square;
            if (c == '|') {
                // "||", "|]", "[|", "|:" and ":|" are one bar line each.
                ++r.bars;
                if (k + 1 < l.size() && (l[k + 1] == '|' || l[k + 1] == ']')) ++k;
                if (k + 1 < l.size() && l[k + 1] == ':') ++repeat_open;
                if (k > 0 && l[k - 1] == ':') ++repeat_close;
            } else if (c == ':' && k + 1 < l.size() && l[k + 1] == ':') {
                ++repeat_open, ++repeat_close, ++r.bars, ++k;
            }
        }
        if (quotes % 2) r.errors.push_back("unbalanced \" in line '" + l.substr(0, 40) + "'");
        if (square != 0) r.errors.push_back("unbalanced [ ] in line '" + l.substr(0, 40) + "'");
    }
    if (has_k && body_bytes == 0) r.errors.push_back("the tune has no music after K:");
    if (has_k && body_bytes > 0 && r.bars == 0) r.errors.push_back("the tune has no bar lines");
    if (paren != 0) r.errors.push_back("unbalanced slur parentheses ( )");
    if (brace != 0) r.errors.push_back("unbalanced grace-note braces { }");
    if (repeat_open > repeat_close) r.warnings.push_back("a |: repeat is never closed with :|");
    r.ok = r.errors.empty();
    return r;
}

}  // namespace aviary::music
