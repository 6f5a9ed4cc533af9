// The World chat format (chat_format.h, spec §6.5): message clean-up and turn rendering.
#include "aviary/core/chat_format.h"

namespace aviary {

std::string clean_chat_message(std::string_view in) {
    std::string s;
    s.reserve(in.size());
    for (const char c : in) {
        if (c == '\r') continue;
        if (c == '\n' && !s.empty() && s.back() == '\n') continue;
        s += c;
    }
    const size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string chat_turn(std::string_view role, std::string_view message) {
    std::string out(role);
    out += ": ";
    out += clean_chat_message(message);
    out += "\n\n";
    return out;
}

}  // namespace aviary
