// Training panel: a run from a config (the fields below, or a JSON config file) started as the `aviary train
// text` CLI in a child process (a crash there cannot take the app down; Stop sends SIGINT, on which the trainer
// writes a checkpoint), followed through its JSONL log: live loss and learning-rate plots drawn with ImDrawList
// (hover readout, log-y), progress with ETA (style_anchors §4.6–4.7). Any JSONL log can be opened to view.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "widgets.h"

namespace aviary::studio {

namespace fs = std::filesystem;

namespace {
std::string aviary_cli(const AppState& app) {
    if (!app.settings.aviary_path.empty()) return app.settings.aviary_path;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (const fs::path& cand :
             {self.parent_path() / "aviary", self.parent_path().parent_path() / "cli" / "aviary"})
            if (fs::exists(cand)) return cand.string();
    }
#ifdef AVIARY_CLI_BUILD_PATH
    if (fs::exists(AVIARY_CLI_BUILD_PATH)) return AVIARY_CLI_BUILD_PATH;
#endif
    return "aviary";
}

// With no data path the run trains on a synthetic corpus written into its directory: ABC scale and arpeggio
// exercises in a few keys and meters (built here, so a fresh checkout can start a run without data/).
std::string write_demo_corpus(const fs::path& run_dir) {
    static const char* keys[] = {"C", "G", "D", "A", "F", "Bb"};
    static const char* scales[] = {"CDEF GABc", "GABc defg", "DEFG ABcd", "ABcd efga", "FGAB cdef", "BcdE fgab"};
    static const char* meters[] = {"4/4", "6/8", "3/4"};
    std::string text;
    for (int i = 0; i < 240; ++i) {
        const int k = i % 6, m = (i / 6) % 3;
        std::string tune = "X:" + std::to_string(i + 1) + "\nT:Exercise " + std::to_string(i + 1) + "\nM:" + meters[m] +
                           "\nL:1/8\nK:" + keys[k] + "\n|:" + scales[k] + "|" + scales[(k + i) % 6] + ":|\n";
        std::string escaped;
        for (char c : tune) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
        text += "{\"text\": \"" + escaped + "\"}\n";
    }
    const std::string path = (run_dir / "demo_corpus.jsonl").string();
    write_file_atomic(path, text);
    return path;
}

std::string default_out() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    const fs::path base = xdg && *xdg     ? fs::path(xdg)
                          : home && *home ? fs::path(home) / ".cache"
                                          : fs::temp_directory_path();
    return (base / "aviary" / "studio-runs").string();
}

std::string last_line_of(const std::string& path) {
    std::ifstream f(path);
    std::string line, last;
    while (std::getline(f, line))
        if (!line.empty()) last = line;
    // progress bars rewrite one line with \r: keep the last part
    const size_t cr = last.rfind('\r');
    return cr == std::string::npos ? last : last.substr(cr + 1);
}

void open_log(AppState& app, const std::string& path) {
    TrainingState& t = app.training;
    t.log_path = path;
    t.reader = TrainLogReader(path);
    t.points.clear();
    t.total_steps = 0;
}
}  // namespace

void training_start(AppState& app) {
    TrainingState& t = app.training;
    TrainSettings& ts = app.settings.train;
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "run-%Y%m%d-%H%M%S", std::localtime(&now));
    fs::path run_dir = fs::path(ts.out.empty() ? default_out() : ts.out) / stamp;
    for (int i = 2; fs::exists(run_dir); ++i)
        run_dir = run_dir.parent_path() / (std::string(stamp) + "-" + std::to_string(i));
    fs::create_directories(run_dir);
    t.run_log_path = (run_dir / "aviary.log").string();
    const std::string data = ts.data.empty() ? write_demo_corpus(run_dir) : ts.data;
    if (ts.data.empty())
        app.add_log(Channel::Training, "info", "no data path: training on a synthetic ABC corpus " + data);
    std::vector<std::string> argv = {aviary_cli(app),
                                     "train",
                                     "text",
                                     "--model",
                                     ts.model,
                                     "--tokenizer",
                                     ts.tokenizer,
                                     "--data",
                                     data,
                                     "--out",
                                     run_dir.string(),
                                     "--steps",
                                     std::to_string(ts.steps),
                                     "--ctx-len",
                                     std::to_string(ts.ctx_len),
                                     "--batch",
                                     std::to_string(ts.batch),
                                     "--lr",
                                     std::to_string(ts.lr),
                                     "--lr-final",
                                     std::to_string(ts.lr_final),
                                     "--warmup",
                                     std::to_string(ts.warmup),
                                     "--threads",
                                     std::to_string(ts.threads),
                                     "--save-every",
                                     std::to_string(ts.save_every),
                                     "--quiet"};
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    app.add_log(Channel::Training, "info", "starting: " + cmd);
    t.proc.start(argv, t.run_log_path);
    open_log(app, (run_dir / "train_log.jsonl").string());
    t.total_steps = ts.steps;
    t.running = true, t.stopping = false;
    t.status = "running";
}

void training_poll(AppState& app, double now) {
    TrainingState& t = app.training;
    if (now - t.last_poll < 0.25) return;
    t.last_poll = now;
    try {
        auto pts = t.reader.poll();
        if (t.reader.restarted()) t.points.clear();
        t.points.insert(t.points.end(), pts.begin(), pts.end());
    } catch (const std::exception& e) {
        app.add_error(Channel::Training, e.what());
        t.reader = TrainLogReader();  // stop following a broken log
    }
    if (t.running && !t.proc.running()) {
        t.running = false;
        const int code = t.proc.exit_code();
        if (code == 0) {
            t.status = t.stopping ? "stopped (checkpoint saved)" : "finished";
            app.add_log(Channel::Training, "info", "training " + t.status);
        } else if (t.stopping && code == 128 + SIGINT) {
            // Stopped while still starting up, before the trainer took over SIGINT: nothing to save yet.
            t.status = "stopped before the first step";
            app.add_log(Channel::Training, "info", "training " + t.status);
        } else {
            t.status = "failed (exit " + std::to_string(code) + ")";
            app.add_error(Channel::Training,
                          "training failed (exit " + std::to_string(code) + "): " + last_line_of(t.run_log_path));
        }
        t.stopping = false;
    }
}

void draw_training_panel(AppState& app) {
    TrainingState& t = app.training;
    TrainSettings& ts = app.settings.train;
    ImGui::BeginChild("##trainconfig", ImVec2(340, 0), true);
    ImGui::TextUnformatted("Run config");
    if (t.running) ImGui::BeginDisabled();
    ImGui::PushItemWidth(170);
    ImGui::InputText("model", &ts.model);
    help_marker(
        "init:N_LAYER,N_EMBD,VERSION trains from the official init (e.g. init:2,64,5); a .pth/.safetensors "
        "path fine-tunes it.");
    ImGui::InputTextWithHint("data", "(synthetic ABC exercises)", &ts.data);
    help_marker(
        "binidx prefix, .jsonl ({\"text\": ...} per line), text file or directory. Empty: a synthetic "
        "corpus of ABC scale exercises written into the run directory.");
    ImGui::InputTextWithHint("out", "~/.cache/aviary/studio-runs", &ts.out);
    help_marker("Each run writes a new run-YYYYmmdd-HHMMSS directory here (checkpoints, train_log.jsonl, model).");
    int tok = ts.tokenizer == "world" ? 1 : 0;
    if (ImGui::Combo("tokenizer", &tok, "byte\0world\0")) ts.tokenizer = tok ? "world" : "byte";
    auto int_field = [](const char* label, int64_t& v, int64_t lo) {
        int x = int(v);
        if (ImGui::InputInt(label, &x)) v = std::max<int64_t>(lo, x);
    };
    int_field("steps", ts.steps, 1);
    int_field("ctx len", ts.ctx_len, 1);
    int_field("batch", ts.batch, 1);
    int_field("warmup", ts.warmup, 0);
    int_field("save every", ts.save_every, 0);
    ImGui::InputDouble("lr", &ts.lr, 0, 0, "%.2e");
    ImGui::InputDouble("lr final", &ts.lr_final, 0, 0, "%.2e");
    ImGui::SliderInt("threads", &ts.threads, 1, 16);
    help_marker("CPU threads of the training process (the studio's own UI needs one core).");
    ImGui::PopItemWidth();
    if (t.running) ImGui::EndDisabled();
    if (studio_button(app, "Start", !t.running)) {
        try {
            training_start(app);
        } catch (const std::exception& e) {
            app.add_error(Channel::Training, e.what());
        }
    }
    ImGui::SameLine();
    if (studio_button(app, t.stopping ? "Stopping...##train" : "Stop##train", t.running && !t.stopping)) {
        t.proc.interrupt();
        t.stopping = true;
    }
    ImGui::Separator();
    ImGui::SetNextItemWidth(200);
    ImGui::InputTextWithHint("##config", "config.json", &t.config_path);
    if (studio_button(app, "Load config", !t.running && !t.config_path.empty())) {
        try {
            std::string text;
            AVIARY_CHECK(read_whole_file(t.config_path, text), "cannot read config '", t.config_path, "'");
            ts = train_config_from_json(text, "config '" + t.config_path + "'");
        } catch (const std::exception& e) {
            app.add_error(Channel::Training, e.what());
        }
    }
    ImGui::SameLine();
    if (studio_button(app, "Save config", !t.config_path.empty())) {
        try {
            write_file_atomic(t.config_path, train_config_to_json(ts));
        } catch (const std::exception& e) {
            app.add_error(Channel::Training, e.what());
        }
    }
    ImGui::Separator();
    ImGui::TextUnformatted("View a log");
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##logpath", "train_log.jsonl", &t.log_path);
    if (studio_button(app, "Open log", !t.running && !t.log_path.empty())) open_log(app, t.log_path);
    ImGui::EndChild();

    ImGui::SameLine();
    ImGui::BeginChild("##trainplots", ImVec2(0, 0));
    const TrainLogPoint* last = t.points.empty() ? nullptr : &t.points.back();
    const int64_t total = t.total_steps > 0 ? t.total_steps : (last ? last->step : 0);
    ImGui::Text("Status: %s%s", t.status.c_str(), t.running ? waiting_dots(ImGui::GetTime()) : "");
    ImGui::SameLine();
    ImGui::TextDisabled("  %s", t.log_path.c_str());
    char overlay[160] = "";
    float frac = 0;
    if (last) {
        frac = total > 0 ? float(double(last->step) / double(total)) : 0;
        const double eta = t.running ? eta_seconds(t.points, total) : 0;
        std::snprintf(overlay, sizeof overlay, "step %lld / %lld   loss %.4f   lr %.2e   %.0f tok/s   elapsed %s%s%s",
                      static_cast<long long>(last->step), static_cast<long long>(total), last->loss, last->lr,
                      last->tokens_per_s, format_duration(last->elapsed).c_str(), t.running ? "   ETA " : "",
                      t.running ? format_duration(eta).c_str() : "");
    }
    ImGui::ProgressBar(frac, ImVec2(-1, 0), overlay);
    ImGui::Checkbox("log y", &t.log_y);
    std::vector<double> steps, loss, lr;
    for (const auto& p : t.points) steps.push_back(double(p.step)), loss.push_back(p.loss), lr.push_back(p.lr);
    const float h = (ImGui::GetContentRegionAvail().y - 8) / 2;
    line_plot("##loss", ImVec2(-1, h * 1.25f), {{&steps, &loss, IM_COL32(255, 150, 60, 255), "loss"}}, t.log_y, "step",
              "%.3f");
    line_plot("##lr", ImVec2(-1, h * 0.75f - 4), {{&steps, &lr, IM_COL32(90, 180, 255, 255), "learning rate"}}, false,
              "step", "%.1e");
    ImGui::EndChild();
}

}  // namespace aviary::studio
