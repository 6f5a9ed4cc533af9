// External ABC tools (multimodal_spec.md C.5): abc2midi (validity + MIDI; exit status 0 even on errors, so
// its messages are parsed), fluidsynth + fluid-soundfont-gm (WAV), abcm2ps (SVG). Tools are looked up on
// $PATH and run with fork/execv (no shell, so file names are never interpreted).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/music/abc_tools.h"

namespace fs = std::filesystem;

namespace aviary::music {
namespace {

struct RunResult {
    int status = -1;
    std::string output;  // stdout and stderr together
};

RunResult run_tool(const std::string& exe, const std::vector<std::string>& args) {
    int fds[2];
    AVIARY_CHECK(pipe(fds) == 0, "cannot create a pipe to run ", exe);
    const pid_t pid = fork();
    AVIARY_CHECK(pid >= 0, "cannot start ", exe);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        const int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(exe.c_str()));
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(exe.c_str(), argv.data());
        _exit(127);
    }
    close(fds[1]);
    RunResult r;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, size_t(n));
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string require_tool(const std::string& name, const std::string& package, const std::string& purpose) {
    const std::string p = find_tool(name);
    AVIARY_CHECK(!p.empty(), name, " is not installed (needed for ", purpose, "); install the Debian package '",
                 package, "' (tools/install-deps.sh does)");
    return p;
}

std::string temp_path(const std::string& suffix) {
    std::random_device rd;
    return (fs::temp_directory_path() /
            ("aviary-music-" + std::to_string(getpid()) + "-" + std::to_string(rd()) + suffix))
        .string();
}

bool contains_word(const std::string& line, const char* word) {
    return line.find(word) != std::string::npos;
}

}  // namespace

std::string find_tool(const std::string& name) {
    if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = std::getenv("PATH");
    if (!path) return "";
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        if (dir.empty()) continue;
        const std::string cand = dir + "/" + name;
        if (access(cand.c_str(), X_OK) == 0 && !fs::is_directory(cand)) return cand;
    }
    return "";
}

Abc2MidiResult abc2midi_check(const std::string& abc_file, const std::string& midi_out) {
    const std::string exe = require_tool("abc2midi", "abcmidi", "checking ABC tunes");
    AVIARY_CHECK(fs::exists(abc_file), "ABC file '", abc_file, "' does not exist");
    const std::string out = midi_out.empty() ? temp_path(".mid") : midi_out;
    RunResult rr = run_tool(exe, {abc_file, "-o", out});
    if (midi_out.empty()) {
        std::error_code ec;
        fs::remove(out, ec);
    }
    Abc2MidiResult r;
    r.output = rr.output;
    std::stringstream ss(rr.output);
    std::string line;
    bool processed = true;
    while (std::getline(ss, line)) {
        if (contains_word(line, "Error") || contains_word(line, "error"))
            r.errors.push_back(line);
        else if (contains_word(line, "Warning") || contains_word(line, "warning"))
            r.warnings.push_back(line);
        if (contains_word(line, "No tune processed")) processed = false;
    }
    if (!processed && r.errors.empty()) r.errors.push_back("abc2midi: no tune processed (missing X: field?)");
    r.valid = r.errors.empty() && rr.status == 0;
    return r;
}

void export_midi(const std::string& abc_file, const std::string& midi_out) {
    Abc2MidiResult r = abc2midi_check(abc_file, midi_out);
    AVIARY_CHECK(fs::exists(midi_out) && fs::file_size(midi_out) > 0, "abc2midi wrote no MIDI for '", abc_file,
                 "': ", r.errors.empty() ? r.output : r.errors.front());
}

std::string default_soundfont() {
    for (const char* p : {"/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2"})
        if (fs::exists(p)) return p;
    return "";
}

void export_wav(const std::string& midi_file, const std::string& wav_out, const std::string& soundfont) {
    const std::string exe = require_tool("fluidsynth", "fluidsynth", "rendering WAV audio");
    const std::string sf = soundfont.empty() ? default_soundfont() : soundfont;
    AVIARY_CHECK(!sf.empty() && fs::exists(sf),
                 "no General MIDI soundfont found (needed for WAV); install the "
                 "Debian package 'fluid-soundfont-gm' or pass a .sf2 file");
    AVIARY_CHECK(fs::exists(midi_file), "MIDI file '", midi_file, "' does not exist");
    // -n: no MIDI input, -i: no shell, -F: render to file, -r: sample rate.
    RunResult rr = run_tool(exe, {"-ni", "-F", wav_out, "-r", "44100", sf, midi_file});
    AVIARY_CHECK(rr.status == 0 && fs::exists(wav_out) && fs::file_size(wav_out) > 44, "fluidsynth failed on '",
                 midi_file, "': ", rr.output.substr(0, 300));
}

void export_svg(const std::string& abc_file, const std::string& svg_out) {
    const std::string exe = require_tool("abcm2ps", "abcm2ps", "engraving SVG scores");
    AVIARY_CHECK(fs::exists(abc_file), "ABC file '", abc_file, "' does not exist");
    // -g writes one SVG per page as <stem>001.svg next to -O's name; we ask for a temporary stem and move
    // the first page into place.
    const std::string stem = temp_path("");
    RunResult rr = run_tool(exe, {"-g", "-q", abc_file, "-O", stem + ".svg"});
    std::string page;
    for (const std::string& cand : {stem + "001.svg", stem + ".svg"})
        if (page.empty() && fs::exists(cand)) page = cand;
    AVIARY_CHECK(!page.empty(), "abcm2ps wrote no SVG for '", abc_file, "': ", rr.output.substr(0, 300));
    std::error_code ec;
    fs::rename(page, svg_out, ec);
    if (ec) {
        fs::copy_file(page, svg_out, fs::copy_options::overwrite_existing);
        fs::remove(page, ec);
    }
    for (int i = 2; i < 100; ++i) {  // later pages, if any, are not kept
        char suf[16];
        std::snprintf(suf, sizeof suf, "%03d.svg", i);
        if (!fs::remove(stem + suf, ec)) break;
    }
}

}  // namespace aviary::music
