// aviary-studio: the shell — window, GL context, ImGui, the frame loop — and nothing else (STYLE.md; ImHex
// main/). Panels draw in panel_*.cpp; the one worker thread (studio_worker.h) owns the models; GL calls stay
// on this thread (textures through AppState::main_queue). The loop sleeps in glfwWaitEventsTimeout when
// nothing changes and wakes on input or on a worker event (glfwPostEmptyEvent), style_anchors §4.8.
//   aviary-studio [--script FILE --screenshot-dir DIR] [--size WxH] [--settings FILE]
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "app_state.h"
#include "aviary/core/blas_core.h"
#include "aviary/core/error.h"
#include "library_pin.h"
#include "script_runner.h"
#include "widgets.h"

using namespace aviary::studio;

namespace {

struct Args {
    std::string script, screenshot_dir, settings;
    int width = 1280, height = 800;
};

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: aviary-studio [--script FILE --screenshot-dir DIR] [--size WxH] [--settings FILE]\n"
                 "  --script FILE          run a scripted session (see apps/studio/script.h), then exit\n"
                 "  --screenshot-dir DIR   where the script's screenshots go (created)\n"
                 "  --size WxH             window size (default 1280x800)\n"
                 "  --settings FILE        settings file (default $XDG_CONFIG_HOME/aviary/studio.json)\n");
}

Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw aviary::UsageError(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--script")
            a.script = value();
        else if (arg == "--screenshot-dir")
            a.screenshot_dir = value();
        else if (arg == "--settings")
            a.settings = value();
        else if (arg == "--size") {
            const std::string v = value();
            if (std::sscanf(v.c_str(), "%dx%d", &a.width, &a.height) != 2 || a.width < 320 || a.height < 240 ||
                a.width > 8192 || a.height > 8192)
                throw aviary::UsageError("--size '" + v + "': expected WxH, e.g. 1280x800 (at least 320x240)");
        } else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            std::exit(0);
        } else
            throw aviary::UsageError("unknown argument '" + arg + "' (see --help)");
    }
    if (!a.script.empty() && a.screenshot_dir.empty()) a.screenshot_dir = ".";
    if (a.script.empty() && !a.screenshot_dir.empty()) throw aviary::UsageError("--screenshot-dir needs --script");
    return a;
}

void draw_banners(AppState& app) {
    for (size_t i = 0; i < app.banners.size();) {
        ImGui::PushID(int(i));
        ImGui::PushStyleColor(ImGuiCol_ChildBg, ImVec4(0.45f, 0.08f, 0.08f, 1));
        ImGui::BeginChild("##banner", ImVec2(0, ImGui::GetFrameHeightWithSpacing() + 4), true,
                          ImGuiWindowFlags_NoScrollbar);
        ImGui::TextUnformatted("error:");
        ImGui::SameLine();
        ImGui::TextUnformatted(app.banners[i].text.c_str());
        ImGui::SameLine(ImGui::GetWindowWidth() - 40);
        const bool close = ImGui::SmallButton("x");
        ImGui::EndChild();
        ImGui::PopStyleColor();
        ImGui::PopID();
        if (close)
            app.banners.erase(app.banners.begin() + long(i));
        else
            ++i;
    }
}

void draw_status_bar(AppState& app) {
    ImGui::Separator();
    const ChatState& c = app.chat;
    ImGui::Text("%s", app.worker->busy() ? "worker: busy" : "worker: idle");
    ImGui::SameLine();
    ImGui::TextDisabled("|  CPU, fp32, %d thread%s", app.settings.threads, app.settings.threads == 1 ? "" : "s");
    ImGui::SameLine();
    ImGui::TextDisabled("|  chat state %s  |  %.1f tok/s  |  %lld tokens", human_bytes(c.state_bytes).c_str(),
                        c.tokens_per_s, static_cast<long long>(c.tokens));
    ImGui::SameLine();
    ImGui::TextDisabled("|  music %.0f bytes/s", app.music.bytes_per_s);
    ImGui::SameLine();
    ImGui::TextDisabled("|  training: %s", app.training.status.c_str());
}

void draw_ui(AppState& app) {
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    ImGui::Begin("Aviary Studio", nullptr,
                 ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                     ImGuiWindowFlags_NoBringToFrontOnFocus);
    ImGui::BeginChild("##sidebar", ImVec2(130, -ImGui::GetFrameHeightWithSpacing() - 4), true);
    ImGui::TextDisabled("Aviary Studio");
    ImGui::Separator();
    const std::pair<Panel, const char*> items[] = {{Panel::Chat, "Chat"},         {Panel::Image, "Image QA"},
                                                   {Panel::Audio, "Audio"},       {Panel::Music, "Music"},
                                                   {Panel::Training, "Training"}, {Panel::Log, "Log"},
                                                   {Panel::Settings, "Settings"}};
    for (const auto& [p, label] : items)
        if (ImGui::Selectable(label, app.panel == p)) app.panel = p;
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("##main", ImVec2(0, -ImGui::GetFrameHeightWithSpacing() - 4));
    draw_banners(app);
    switch (app.panel) {
        case Panel::Chat:
            draw_chat_panel(app);
            break;
        case Panel::Image:
            draw_image_panel(app);
            break;
        case Panel::Audio:
            draw_audio_panel(app);
            break;
        case Panel::Music:
            draw_music_panel(app);
            break;
        case Panel::Training:
            draw_training_panel(app);
            break;
        case Panel::Log:
            draw_log_panel(app);
            break;
        case Panel::Settings:
            draw_settings_panel(app);
            break;
    }
    ImGui::EndChild();
    draw_status_bar(app);
    ImGui::End();
}

int run(const Args& args) {
    std::unique_ptr<ScriptRunner> runner;
    if (!args.script.empty()) {
        runner = std::make_unique<ScriptRunner>(load_script(args.script), args.screenshot_dir);
        std::filesystem::create_directories(args.screenshot_dir);
    }
    glfwSetErrorCallback([](int code, const char* text) { std::fprintf(stderr, "glfw: %s (%d)\n", text, code); });
    AVIARY_CHECK(glfwInit(), "cannot initialise GLFW: no display? (set DISPLAY, or run under xvfb-run)");
    struct GlfwGuard {
        ~GlfwGuard() {
            pin_loaded_libraries("_dri.so");  // Mesa's driver stays mapped for LeakSanitizer (library_pin.h)
            glfwTerminate();
        }
    } glfw_guard;
    glfwWindowHint(GLFW_RESIZABLE, runner ? GLFW_FALSE : GLFW_TRUE);
    GLFWwindow* window = glfwCreateWindow(args.width, args.height, "Aviary Studio", nullptr, nullptr);
    AVIARY_CHECK(window, "cannot create a ", args.width, "x", args.height, " OpenGL window (no OpenGL 3 driver?)");
    glfwMakeContextCurrent(window);
    glfwSwapInterval(1);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    ImGui::StyleColorsDark();
    ImGui::GetStyle().WindowRounding = 0;

    AppState app;
    app.scripted = runner != nullptr;
    app.start_time = glfwGetTime();
    app.settings_path = args.settings.empty() ? default_settings_path() : args.settings;
    static std::string ini_path;
    ini_path = (std::filesystem::path(app.settings_path).parent_path() / "studio-imgui.ini").string();
    io.IniFilename = runner ? nullptr : ini_path.c_str();
    try {
        app.settings = load_settings(app.settings_path);
    } catch (const std::exception& e) {
        app.add_error(Channel::App, std::string(e.what()) + " (defaults used)");
    }
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init("#version 130");

    {
        StudioWorker worker(app.settings.threads);
        worker.set_wake([] { glfwPostEmptyEvent(); });
        app.worker = &worker;
        app.register_fields();
        glfwSetWindowUserPointer(window, &app);
        glfwSetDropCallback(window, [](GLFWwindow* w, int count, const char** paths) {
            auto* a = static_cast<AppState*>(glfwGetWindowUserPointer(w));
            for (int i = 0; i < count; ++i) a->dropped.emplace_back(paths[i]);
        });
        startup_commands(app);

        int extra_frames = 3;
        while (!glfwWindowShouldClose(window)) {
            const bool active = runner || worker.busy() || !app.panels_idle() || extra_frames > 0;
            if (glfwGetWindowAttrib(window, GLFW_ICONIFIED)) {
                glfwWaitEvents();
            } else if (active) {
                glfwPollEvents();
            } else {
                // Sleep until input, a worker event (glfwPostEmptyEvent) or the timeout. A wake-up before the
                // timeout is an event: render it and a few frames after (popups, hover; ocornut/imgui#3220). A
                // timeout with nothing to follow renders nothing.
                const double timeout = app.training.running ? 0.25 : 1.0, t_wait = glfwGetTime();
                glfwWaitEventsTimeout(timeout);
                if (glfwGetTime() - t_wait < timeout * 0.95)
                    extra_frames = 3;
                else if (!app.training.running && app.dropped.empty() && worker.events().size() == 0)
                    continue;
            }
            const auto t0 = std::chrono::steady_clock::now();
            const double now = glfwGetTime();
            app.main_queue.run_all();
            for (const Event& e : worker.poll()) handle_event(app, e), extra_frames = 3;
            training_poll(app, now);
            for (const std::string& p : std::exchange(app.dropped, {})) open_path_in_panel(app, p);
            if (runner) {
                runner->before_frame(app, now);
                if (runner->finished()) break;
            }
            const bool busy = worker.busy();
            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            ImGui::NewFrame();
            draw_ui(app);
            ImGui::Render();
            int fb_w = 0, fb_h = 0;
            glfwGetFramebufferSize(window, &fb_w, &fb_h);
            glViewport(0, 0, fb_w, fb_h);
            glClearColor(0.1f, 0.1f, 0.12f, 1);
            glClear(GL_COLOR_BUFFER_BIT);
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            ++app.frames;
            if (runner && ms > 50)
                std::fprintf(stderr, "slow frame %lld: %.1f ms (panel %s, worker %s)\n",
                             static_cast<long long>(app.frames), ms, panel_name(app.panel), busy ? "busy" : "idle");
            if (busy) {
                ++app.frames_busy;
                app.frame_ms_sum_busy += ms;
                app.frame_ms_max_busy = std::max(app.frame_ms_max_busy, ms);
            }
            if (runner) runner->after_render(app, fb_w, fb_h);
            glfwSwapBuffers(window);
            if (extra_frames > 0) --extra_frames;
            if (runner) {  // no vsync under Xvfb: keep the scripted loop near 60 fps instead of spinning
                const auto spent = std::chrono::steady_clock::now() - t0;
                if (spent < std::chrono::milliseconds(16))
                    std::this_thread::sleep_for(std::chrono::milliseconds(16) - spent);
            }
        }
        if (app.training.running) app.training.proc.interrupt();
        worker.stop();
        try {
            save_settings(app.settings_path, app.settings);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "warning: settings not saved: %s\n", e.what());
        }
        worker.set_wake({});
        app.main_queue.run_all();
        for (Texture* t : {&app.image.tex, &app.image.crop_tex, &app.audio.spec_tex, &app.music.sheet_tex})
            if (t->id) {
                GLuint id = t->id;
                glDeleteTextures(1, &id);
            }
        app.worker = nullptr;
    }
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    if (runner) {
        std::fprintf(stderr,
                     "script: %zu screenshot(s), %lld frames; while the worker was busy: %lld frames, "
                     "mean %.1f ms, max %.1f ms per frame\n",
                     runner->screenshots().size(), static_cast<long long>(app.frames),
                     static_cast<long long>(app.frames_busy),
                     app.frames_busy ? app.frame_ms_sum_busy / double(app.frames_busy) : 0.0, app.frame_ms_max_busy);
        if (runner->exit_code() != 0) std::fprintf(stderr, "error: %s\n", runner->error().c_str());
        return runner->exit_code();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    aviary::ensure_blas_core(argv);  // before any GEMM: OpenBLAS's kernels for this CPU (blas_core.h)
    try {
        return run(parse_args(argc, argv));
    } catch (const aviary::UsageError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
