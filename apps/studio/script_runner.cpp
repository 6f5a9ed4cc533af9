// Scripted mode (script_runner.h).
#include "script_runner.h"

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aviary/core/atomic_file.h"
#include "gl_texture.h"

namespace aviary::studio {

namespace fs = std::filesystem;

ScriptRunner::ScriptRunner(std::vector<ScriptCommand> commands, std::string screenshot_dir)
    : commands_(std::move(commands)), dir_(std::move(screenshot_dir)) {}

void ScriptRunner::fail(const ScriptCommand& c, const std::string& what) {
    finished_ = true;
    exit_code_ = 1;
    error_ =
        "script line " + std::to_string(c.line) + " (" + c.verb + (c.rest.empty() ? "" : " " + c.rest) + "): " + what;
}

void ScriptRunner::before_frame(AppState& app, double now) {
    if (finished_) return;
    // Finish the current wait.
    if (wait_ != Wait::None) {
        const ScriptCommand& c = commands_[pc_ - 1];
        switch (wait_) {
            case Wait::Frames:
            case Wait::Shot:
                if (frames_left_-- > 0) return;
                if (wait_ == Wait::Shot) return;  // after_render clears it
                break;
            case Wait::Click:
                if (!app.click_consumed) {
                    app.pending_click.clear();
                    return fail(c, "no enabled button '" + c.rest + "' on the " + panel_name(app.panel) + " panel");
                }
                break;
            case Wait::Idle: {
                const bool idle = !app.worker->busy() && app.worker->events().size() == 0 && app.panels_idle();
                if (!idle) {
                    frames_left_ = 2;  // settle frames after becoming idle
                    if (now > deadline_) return fail(c, "still busy after " + c.args[0] + " s");
                    return;
                }
                if (frames_left_-- > 0) return;
                break;
            }
            case Wait::None:
                break;
        }
        wait_ = Wait::None;
    }
    while (!finished_ && wait_ == Wait::None) {
        if (pc_ >= commands_.size()) {
            finished_ = true;
            return;
        }
        const ScriptCommand& c = commands_[pc_++];
        if (c.verb == "panel") {
            panel_from_name(c.args[0], app.panel);
            wait_ = Wait::Frames, frames_left_ = 2;
        } else if (c.verb == "type") {
            const auto it = app.text_fields.find(c.args[0]);
            if (it == app.text_fields.end()) return fail(c, "unknown text field '" + c.args[0] + "'");
            *it->second = c.rest;
        } else if (c.verb == "set") {
            const auto it = app.number_fields.find(c.args[0]);
            if (it == app.number_fields.end()) return fail(c, "unknown numeric field '" + c.args[0] + "'");
            it->second(c.args[1] == "true" ? 1.0 : c.args[1] == "false" ? 0.0 : std::stod(c.args[1]));
        } else if (c.verb == "click") {
            app.pending_click = c.rest;
            app.click_consumed = false;
            wait_ = Wait::Click;
        } else if (c.verb == "open") {
            open_path_in_panel(app, c.rest);
            wait_ = Wait::Frames, frames_left_ = 1;
        } else if (c.verb == "wait-idle") {
            deadline_ = now + std::stod(c.args[0]);
            wait_ = Wait::Idle, frames_left_ = 2;
        } else if (c.verb == "wait-frames") {
            wait_ = Wait::Frames, frames_left_ = std::stoi(c.args[0]);
        } else if (c.verb == "screenshot") {
            shot_ = c.args[0];
            wait_ = Wait::Shot, frames_left_ = 2;
        } else if (c.verb == "expect-no-error") {
            if (!app.banners.empty()) return fail(c, "an error is showing: " + app.banners.back().text);
        } else if (c.verb == "expect-error") {
            std::string shown;
            bool found = false;
            for (const Banner& b : app.banners) {
                found = found || b.text.find(c.rest) != std::string::npos;
                shown += (shown.empty() ? "" : " | ") + b.text;
            }
            if (!found)
                return fail(c, app.banners.empty()
                                   ? "no error banner is showing"
                                   : "no error banner contains '" + c.rest + "' (showing: " + shown + ")");
            app.banners.clear();
        } else if (c.verb == "expect-output") {
            const auto it = app.outputs.find(c.args[0]);
            if (it == app.outputs.end()) return fail(c, "unknown output '" + c.args[0] + "'");
            const std::string value = it->second();
            if (value.empty()) return fail(c, "'" + c.args[0] + "' is empty");
            if (value.find(c.rest) == std::string::npos)
                return fail(c, "'" + c.args[0] + "' does not contain '" + c.rest + "': " + value.substr(0, 200));
        } else if (c.verb == "quit") {
            finished_ = true;
        }
    }
}

void ScriptRunner::after_render(AppState& app, int fb_width, int fb_height) {
    if (wait_ != Wait::Shot || frames_left_ > 0 || finished_) return;
    const ScriptCommand& c = commands_[pc_ - 1];
    const ImageRGBA img = read_framebuffer(fb_width, fb_height);
    cv::Mat rgba(img.height, img.width, CV_8UC4, const_cast<uint8_t*>(img.rgba.data()));
    cv::Mat bgr;
    cv::cvtColor(rgba, bgr, cv::COLOR_RGBA2BGR);
    const std::string path = (fs::path(dir_) / shot_).string();
    try {
        std::vector<uchar> png;
        if (!cv::imencode(".png", bgr, png)) return fail(c, "cannot encode the screenshot as PNG");
        write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
    } catch (const std::exception& e) {
        return fail(c, e.what());
    }
    screenshots_.push_back(path);
    app.add_log(Channel::App, "info", "screenshot " + path);
    wait_ = Wait::None;
}

}  // namespace aviary::studio
