// Runs a parsed script (script.h) against the live app, one step per frame: it sets fields, queues clicks
// that the panels' studio_button() consumes, waits for the worker to be idle, and writes screenshots from
// the framebuffer (glReadPixels → PNG with OpenCV). Any failure ends the app with exit code 1 and one
// "error: script line N: …" line.
#pragma once
#include <string>
#include <vector>

#include "app_state.h"
#include "script.h"

namespace aviary::studio {

class ScriptRunner {
public:
    ScriptRunner(std::vector<ScriptCommand> commands, std::string screenshot_dir);
    void before_frame(AppState& app, double now);                   // runs commands until one has to wait
    void after_render(AppState& app, int fb_width, int fb_height);  // takes a requested screenshot
    bool finished() const { return finished_; }
    int exit_code() const { return exit_code_; }
    const std::string& error() const { return error_; }
    const std::vector<std::string>& screenshots() const { return screenshots_; }

private:
    enum class Wait { None, Frames, Idle, Click, Shot };
    void fail(const ScriptCommand& c, const std::string& what);
    std::vector<ScriptCommand> commands_;
    std::string dir_;
    size_t pc_ = 0;
    Wait wait_ = Wait::None;
    int frames_left_ = 0;
    double deadline_ = 0;
    std::string shot_;
    bool finished_ = false;
    int exit_code_ = 0;
    std::string error_;
    std::vector<std::string> screenshots_;
};

}  // namespace aviary::studio
