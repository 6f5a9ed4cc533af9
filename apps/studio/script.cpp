// Script parsing for the scripted mode (script.h).
#include "script.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

namespace aviary::studio {

namespace {
std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}
// A finite number strtod reads whole (out-of-range values such as 1e309 are refused here, so the runner's std::stod
// never throws on a parsed script).
bool is_number(const std::string& s) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size() && errno != ERANGE && std::isfinite(v);
}
// A frame count the runner's std::stoi takes: 1 to 9 decimal digits.
bool is_frame_count(const std::string& s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}
}  // namespace

std::vector<ScriptCommand> parse_script(const std::string& text) {
    static const std::set<std::string> panels = {"chat", "image", "audio", "music", "training", "log", "settings"};
    std::vector<ScriptCommand> out;
    std::istringstream in(text);
    std::string raw;
    for (int line = 1; std::getline(in, raw); ++line) {
        const std::string s = trim(raw);
        if (s.empty() || s[0] == '#') continue;
        ScriptCommand c;
        c.line = line;
        const size_t sp = s.find_first_of(" \t");
        c.verb = s.substr(0, sp);
        c.rest = sp == std::string::npos ? "" : trim(s.substr(sp));
        std::istringstream words(c.rest);
        for (std::string w; words >> w;) c.args.push_back(w);
        auto need = [&](size_t n, const char* what) {
            AVIARY_CHECK(c.args.size() >= n, "script line ", line, ": '", c.verb, "' needs ", what);
        };
        if (c.verb == "panel") {
            need(1, "a panel name");
            AVIARY_CHECK(panels.count(c.args[0]), "script line ", line, ": unknown panel '", c.args[0],
                         "' (chat, image, audio, music, training, log, settings)");
        } else if (c.verb == "type") {
            need(1, "a field name and text");
            const size_t sp2 = c.rest.find_first_of(" \t");
            std::string value = sp2 == std::string::npos ? "" : trim(c.rest.substr(sp2));
            for (size_t p; (p = value.find("\\n")) != std::string::npos;) value.replace(p, 2, "\n");
            c.rest = value;
        } else if (c.verb == "set") {
            need(2, "a field name and a value");
            AVIARY_CHECK(is_number(c.args[1]) || c.args[1] == "true" || c.args[1] == "false", "script line ", line,
                         ": 'set ", c.args[0], "' expects a number, true or false, got '", c.args[1], "'");
        } else if (c.verb == "click" || c.verb == "open") {
            need(1, c.verb == "click" ? "a button label" : "a path");
        } else if (c.verb == "wait-idle") {
            need(1, "a number");
            AVIARY_CHECK(is_number(c.args[0]) && std::stod(c.args[0]) >= 0, "script line ", line, ": '", c.verb,
                         "' expects a non-negative number, got '", c.args[0], "'");
        } else if (c.verb == "wait-frames") {
            need(1, "a number");
            AVIARY_CHECK(is_frame_count(c.args[0]), "script line ", line, ": '", c.verb,
                         "' expects a non-negative number of frames (at most 9 digits), got '", c.args[0], "'");
        } else if (c.verb == "screenshot") {
            need(1, "a file name");
            AVIARY_CHECK(c.args[0].size() > 4 && c.args[0].substr(c.args[0].size() - 4) == ".png" &&
                             c.args[0].find('/') == std::string::npos,
                         "script line ", line, ": screenshot names a .png file inside the screenshot directory, got '",
                         c.args[0], "'");
        } else if (c.verb == "expect-error") {
            need(1, "the text the error banner should contain");
        } else if (c.verb == "expect-output") {
            need(1, "an output name");
            const size_t sp2 = c.rest.find_first_of(" \t");
            c.rest = sp2 == std::string::npos ? "" : trim(c.rest.substr(sp2));  // the text to find ("": any)
        } else if (c.verb == "quit" || c.verb == "expect-no-error") {
        } else {
            AVIARY_FAIL("script line ", line, ": unknown command '", c.verb,
                        "' (panel, type, set, click, open, wait-idle, wait-frames, screenshot, expect-no-error, "
                        "expect-error, expect-output, quit)");
        }
        out.push_back(std::move(c));
    }
    return out;
}

std::vector<ScriptCommand> load_script(const std::string& path) {
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read script '", path, "'");
    return parse_script(text);
}

}  // namespace aviary::studio
