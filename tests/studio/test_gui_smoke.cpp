// Smoke test of aviary-studio under Xvfb (label gui): a script drives every panel through the scripted mode
// (`--script FILE --screenshot-dir DIR`) — chat generation, the test pattern at 1:1, the demo sound, a generated
// tune with its sheet music, a training run started and stopped (SIGINT: checkpoint) — and each screenshot must
// exist, have the window's size and be non-trivial (more distinct colours than a blank window, per panel, and not
// one flat colour). A bad script exits 1 with an "error: script line N" line. Skips only when xvfb-run is missing.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "common/cli_run.h"

namespace fs = std::filesystem;
using aviary::test::slurp;

namespace {

bool have_xvfb() {
    return std::system("command -v xvfb-run >/dev/null 2>&1 && command -v Xvfb >/dev/null 2>&1") == 0;
}

struct StudioRun {
    int code = -1;
    std::string err;
};

StudioRun run_studio(const fs::path& dir, const std::string& script) {
    const fs::path script_path = dir / "script.txt", err = dir / "stderr.txt";
    std::ofstream(script_path) << script;
    // Own config/cache dirs: the test never touches the user's settings. `timeout` bounds a hung X server.
    const std::string cmd = "cd " + dir.string() + " && XDG_CONFIG_HOME=" + (dir / "config").string() +
                            " XDG_CACHE_HOME=" + (dir / "cache").string() +
                            " timeout 110 xvfb-run -a -s '-screen 0 1280x800x24' " + AVIARY_STUDIO_PATH + " --script " +
                            script_path.string() + " --screenshot-dir " + (dir / "shots").string() + " >/dev/null 2>" +
                            err.string();
    const int status = std::system(cmd.c_str());
    StudioRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = slurp(err);
    return r;
}

}  // namespace

TEST(StudioGui, EveryPanelUnderXvfb) {
    if (!have_xvfb()) GTEST_SKIP() << "xvfb-run/Xvfb not installed (Debian package xvfb)";
    const fs::path dir = aviary::test::scratch_dir("studio_gui");
    const std::string script = R"(# every panel, as the docs' screenshots
wait-idle 60
panel chat
type chat.input X:1\nT:Smoke test\nM:6/8\nL:1/8\nK:D\n
set chat.max_tokens 120
click Generate
wait-idle 60
expect-no-error
screenshot chat.png
panel image
click 1:1
screenshot image.png
panel audio
screenshot audio.png
panel music
set music.max_bytes 300
set music.seed 3
click Generate
wait-idle 60
click Render sheet
wait-idle 30
expect-no-error
screenshot music.png
panel training
set training.steps 400
click Start
wait-frames 240
click Stop
wait-idle 60
expect-no-error
screenshot training.png
panel log
screenshot log.png
panel settings
screenshot settings.png
quit
)";
    const StudioRun r = run_studio(dir, script);
    ASSERT_EQ(r.code, 0) << r.err;
    // Distinct colours each screenshot must exceed. ImGui's default font is not antialiased, so text-only panels
    // have a dozen or so (a blank window has 1-3); the image, spectrogram, sheet music and plots have many more.
    const std::pair<const char*, size_t> expected[] = {
        {"chat", 8}, {"image", 200}, {"audio", 100}, {"music", 100}, {"training", 100}, {"log", 8}, {"settings", 8}};
    for (const auto& [name, min_colours] : expected) {
        const fs::path png = dir / "shots" / (std::string(name) + ".png");
        ASSERT_TRUE(fs::exists(png)) << png;
        const cv::Mat m = cv::imread(png.string(), cv::IMREAD_COLOR);
        ASSERT_FALSE(m.empty()) << png;
        EXPECT_EQ(m.cols, 1280) << png;
        EXPECT_EQ(m.rows, 800) << png;
        std::set<uint32_t> colours;
        for (int y = 0; y < m.rows; y += 2)
            for (int x = 0; x < m.cols; x += 2) {
                const cv::Vec3b p = m.at<cv::Vec3b>(y, x);
                colours.insert(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16);
            }
        EXPECT_GT(colours.size(), min_colours) << png << ": only " << colours.size() << " distinct colours";
        std::printf("%s: %zu distinct colours\n", name, colours.size());
        cv::Scalar mean, stddev;
        cv::meanStdDev(m, mean, stddev);
        EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 10.0) << png << " is nearly uniform";
    }
    // The training run was stopped early: its JSONL log has fewer than the 400 steps asked for, and when any step
    // was logged, the trainer wrote a checkpoint on SIGINT.
    const fs::path runs = dir / "cache" / "aviary" / "studio-runs";
    ASSERT_TRUE(fs::exists(runs));
    int n_runs = 0;
    for (const auto& run : fs::directory_iterator(runs)) {
        ++n_runs;
        std::ifstream log(run.path() / "train_log.jsonl");
        int64_t lines = 0;
        for (std::string l; std::getline(log, l);) lines += !l.empty();
        EXPECT_LT(lines, 400) << run.path();
        if (lines > 0) {
            EXPECT_TRUE(fs::exists(run.path() / "checkpoints")) << run.path();
        }
        std::printf("training run stopped after %lld logged steps\n", static_cast<long long>(lines));
    }
    EXPECT_EQ(n_runs, 1);
    // The settings were saved on exit, atomically, under the test's XDG_CONFIG_HOME.
    EXPECT_TRUE(fs::exists(dir / "config" / "aviary" / "studio.json"));
}

TEST(StudioGui, BadScriptExitsWithOneErrorLine) {
    if (!have_xvfb()) GTEST_SKIP() << "xvfb-run/Xvfb not installed (Debian package xvfb)";
    const fs::path dir = aviary::test::scratch_dir("studio_gui_bad");
    StudioRun r = run_studio(dir, "panel chat\ntype chat.nothing hello\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("error: script line 2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("unknown text field 'chat.nothing'"), std::string::npos) << r.err;
    r = run_studio(dir, "panel chat\nclick No Such Button\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("no enabled button 'No Such Button'"), std::string::npos) << r.err;
    r = run_studio(dir, "wobble\n");  // parse error before any window opens
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("error: script line 1: unknown command 'wobble'"), std::string::npos) << r.err;
}

// Issue 20 item 5: a worker error never takes the studio down. In each panel a corrupt model (chat, music, VQA,
// tagger), a non-image (image panel) and a non-audio file (audio panel) must each end in an error banner that names
// the file, and the next valid action on that panel must still produce its output (the previous chat model is kept;
// the others are loaded again from the shipped files).
TEST(StudioGui, WorkerErrorsShowABannerAndTheStudioKeepsWorking) {
    if (!have_xvfb()) GTEST_SKIP() << "xvfb-run/Xvfb not installed (Debian package xvfb)";
    const fs::path dir = aviary::test::scratch_dir("studio_gui_errors");
    const std::string src = AVIARY_SOURCE_DIR;
    // A zip signature then noise (the .pth reader's path), a safetensors header whose length runs past the end,
    // text named as a picture, and a RIFF/WAVE header over noise.
    std::ofstream(dir / "corrupt.pth", std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(300, '\x5a');
    std::ofstream(dir / "corrupt.safetensors", std::ios::binary)
        << std::string("\x40\x00\x00\x00\x00\x00\x00\x00", 8) << R"({"emb.weight": {"dtype": "F32", "sha)";
    std::ofstream(dir / "not_an_image.png") << "this is a text file, not a picture\n";
    std::ofstream(dir / "not_audio.wav", std::ios::binary)
        << std::string("RIFF\x24\x00\x00\x00WAVEfmt ", 16) << std::string(40, '\x7f');
    const std::string bad = dir.string() + "/";
    const std::string script =
        "wait-idle 60\n"
        "panel chat\n"
        "open " +
        bad +
        "corrupt.pth\n"
        "wait-idle 60\n"
        "expect-error corrupt.pth\n"
        "type chat.input X:1\\nT:After the error\\nM:6/8\\nL:1/8\\nK:D\\n\n"
        "set chat.max_tokens 40\n"
        "click Generate\n"
        "wait-idle 60\n"
        "expect-no-error\n"
        "expect-output chat.answer\n"
        "panel music\n"
        "type settings.music_model " +
        bad +
        "corrupt.safetensors\n"
        "set music.max_bytes 120\n"
        "click Generate\n"
        "wait-idle 60\n"
        "expect-error corrupt.safetensors\n"
        "type settings.music_model " +
        src +
        "/assets/models/music-eagle-L6-D256.safetensors\n"
        "click Generate\n"
        "wait-idle 60\n"
        "expect-no-error\n"
        "expect-output music.abc X:\n"
        "panel image\n"
        "type image.model " +
        bad +
        "corrupt.safetensors\n"
        "click Load VQA model\n"
        "wait-idle 60\n"
        "expect-error corrupt.safetensors\n"
        "open " +
        bad +
        "not_an_image.png\n"
        "wait-idle 30\n"
        "expect-error not_an_image.png\n"
        "type image.model " +
        src +
        "/assets/models/vision-demo-rwkv6-L3-D64-vit-L3-D64h4-p8-64px.safetensors\n"
        "click Load VQA model\n"
        "wait-idle 60\n"
        "open " +
        src +
        "/tests/fixtures/vision/scene_rgb.png\n"
        "wait-idle 30\n"
        "expect-output image.description\n"
        "type image.question How many circles are there?\n"
        "click Ask\n"
        "wait-idle 60\n"
        "expect-no-error\n"
        "expect-output image.answer\n"
        "panel audio\n"
        "type audio.model " +
        bad +
        "corrupt.safetensors\n"
        "click Load tagging model\n"
        "wait-idle 60\n"
        "expect-error corrupt.safetensors\n"
        "open " +
        bad +
        "not_audio.wav\n"
        "wait-idle 30\n"
        "expect-error not_audio.wav\n"
        "type audio.model " +
        src +
        "/assets/models/audio-rwkv-tiny-synth.safetensors\n"
        "click Load tagging model\n"
        "wait-idle 60\n"
        "open " +
        src +
        "/assets/samples/sine.wav\n"
        "wait-idle 30\n"
        "expect-output audio.description\n"
        "click Tag\n"
        "wait-idle 60\n"
        "expect-no-error\n"
        "expect-output audio.tags\n"
        "screenshot audio.png\n"
        "quit\n";
    const StudioRun r = run_studio(dir, script);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(dir / "shots" / "audio.png"));
}

// The assertions the test above relies on fail when their condition does not hold (so it cannot pass vacuously).
TEST(StudioGui, ExpectErrorAndExpectOutputFailWhenNothingMatches) {
    if (!have_xvfb()) GTEST_SKIP() << "xvfb-run/Xvfb not installed (Debian package xvfb)";
    const fs::path dir = aviary::test::scratch_dir("studio_gui_expect");
    StudioRun r = run_studio(dir, "panel image\nexpect-error anything\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("error: script line 2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no error banner is showing"), std::string::npos) << r.err;
    r = run_studio(dir, "panel image\nexpect-output image.answer\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("'image.answer' is empty"), std::string::npos) << r.err;
    r = run_studio(
        dir, "panel image\nopen " + (dir / "missing.png").string() + "\nwait-idle 30\nexpect-error some other text\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("no error banner contains 'some other text'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("missing.png"), std::string::npos) << r.err;  // the banner that was showing
}
