// Command-line tests of `aviary music` and `aviary eval music-loss` (issue 4): a tiny byte model trained for
// one step by the real binary, tune files and summary.json, exports with the tools present and hidden from
// $PATH, and one-line errors with exit codes 1/2 (missing model, bad header values, conflicting options).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli_run.h"
#include "common/device.h"

namespace fs = std::filesystem;

namespace {

using Result = aviary::test::CliResult;
using aviary::test::expect_one_error_line;
using aviary::test::slurp;

fs::path tmp_dir() {
    static const fs::path dir = aviary::test::scratch_dir("cli_music_test");
    return dir;
}

Result run(const std::string& args) {
    return aviary::test::run_cli(args, "", tmp_dir());
}

bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// A one-step byte model (L=2, D=64, Eagle) on a few framed tunes: enough to exercise the commands.
std::string tiny_model() {
    static std::string path = [] {
        const fs::path data = tmp_dir() / "tunes.jsonl";
        std::ofstream f(data);
        for (int i = 0; i < 8; ++i)
            f << R"({"text": "\u0002X:1\nM:6/8\nL:1/8\nK:D\n|:dfa afd|ecA ABc:|\n\u0003"})"
              << "\n";
        f.close();
        Result r =
            run("train text --tokenizer byte --model init:2,64,5 --ctx-len 32 --batch 1 --steps 1 --threads 1 "
                "-q --data " +
                data.string() + " --out " + (tmp_dir() / "model").string());
        EXPECT_EQ(r.code, 0) << r.err;
        return (tmp_dir() / "model" / "model.safetensors").string();
    }();
    return path;
}

}  // namespace

TEST(CliMusic, GeneratesTunesAndSummary) {
    const fs::path out = tmp_dir() / "gen";
    Result r = run("music --model " + tiny_model() +
                   " --count 2 --seed 3 --meter 6/8 --length 1/8 --key D "
                   "--max-bytes 30 --threads 1 --out " +
                   out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("% tune_001\nX:1\nM:6/8\nL:1/8\nK:D\n"), std::string::npos) << r.out;
    ASSERT_TRUE(fs::exists(out / "tune_001.abc"));
    ASSERT_TRUE(fs::exists(out / "tune_002.abc"));
    EXPECT_FALSE(fs::exists(out / "tune_003.abc"));
    EXPECT_EQ(slurp(out / "tune_001.abc").rfind("X:1\nM:6/8\nL:1/8\nK:D\n", 0), 0u);
    auto s = nlohmann::json::parse(slurp(out / "summary.json"));
    EXPECT_EQ(s["count"], 2);
    EXPECT_EQ(s["tunes"].size(), 2u);
    EXPECT_EQ(s["sampling"]["top_k"], 8);
    if (have("abc2midi")) {
        EXPECT_EQ(s["abc2midi_valid"].get<int>() + s["abc2midi_invalid"].get<int>(), 2);
        EXPECT_NE(r.err.find("tunes pass abc2midi"), std::string::npos);
    }
}

TEST(CliMusic, ExportsMidiWavSvgWhenToolsArePresent) {
    if (!have("abc2midi") || !have("abcm2ps") || !have("fluidsynth")) GTEST_SKIP() << "ABC tools not installed";
    const fs::path out = tmp_dir() / "export";
    // The prompt's opening bars make the tune playable whatever the tiny model adds.
    Result r = run("music -q --model " + tiny_model() +
                   " --meter 6/8 --length 1/8 --key D --bars '|:dfa afd|' "
                   "--max-bytes 5 --top-k 1 --midi --wav --svg --threads 1 --out " +
                   out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    auto s = nlohmann::json::parse(slurp(out / "summary.json"));
    if (s["tunes"][0]["abc2midi_valid"].get<bool>()) {
        EXPECT_TRUE(fs::exists(out / "tune_001.mid"));
        EXPECT_TRUE(fs::exists(out / "tune_001.wav"));
    }
    EXPECT_TRUE(fs::exists(out / "tune_001.svg") || s["tunes"][0].contains("svg_error"));
}

TEST(CliMusic, MissingToolsAreAClearError) {
    const char* saved = std::getenv("PATH");
    const std::string keep = saved ? saved : "";
    setenv("PATH", (tmp_dir() / "no-bin").string().c_str(), 1);  // the binary is run by absolute path
    Result r = run("music --model " + tiny_model() + " --midi --out " + (tmp_dir() / "nomidi").string());
    Result w = run("music --model " + tiny_model() + " --svg --out " + (tmp_dir() / "nosvg").string());
    Result plain = run("music -q --model " + tiny_model() + " --max-bytes 5 --out " + (tmp_dir() / "plain").string());
    setenv("PATH", keep.c_str(), 1);
    expect_one_error_line(r, 1, "abcmidi");
    expect_one_error_line(w, 1, "abcm2ps");
    EXPECT_FALSE(fs::exists(tmp_dir() / "nomidi" / "tune_001.abc"));
    ASSERT_EQ(plain.code, 0) << plain.err;  // without the tools, tunes are written but not checked
    EXPECT_NE(plain.err.find("abc2midi not installed"), std::string::npos) << plain.err;
}

TEST(CliMusic, BadInputIsAOneLineError) {
    expect_one_error_line(
        run("music --model " + (tmp_dir() / "nope.safetensors").string() + " --out " + (tmp_dir() / "x").string()), 1,
        "does not exist");
    expect_one_error_line(run("music --model " + tiny_model() + " --key D --out " + (tmp_dir() / "x").string()), 2,
                          "--meter");
    expect_one_error_line(
        run("music --model " + tiny_model() + " --meter 6/8 --length 1/8 --key \"$(printf 'D\\303\\251')\" --out " +
            (tmp_dir() / "x").string()),
        2, "ASCII");
    expect_one_error_line(run("music --model " + tiny_model()), 2);                      // --out is required
    setenv("AVIARY_MUSIC_MODEL", (tmp_dir() / "gone.safetensors").string().c_str(), 1);  // default model missing
    Result no_default = run("music --out " + (tmp_dir() / "x").string());
    unsetenv("AVIARY_MUSIC_MODEL");
    expect_one_error_line(no_default, 1, "AVIARY_MUSIC_MODEL");
}

TEST(CliMusic, EvalMusicLossWritesCsvPngAndOverlays) {
    const fs::path data = tmp_dir() / "val.abc";
    std::ofstream(data)
        << "X:1\nM:6/8\nL:1/8\nK:D\n|:dfa afd|ecA ABc:|\n\nX:2\nM:4/4\nL:1/4\nK:C\nC D E F | G A B c |]\n";
    const std::string prefix = (tmp_dir() / "loss").string();
    Result r = run("eval music-loss --model " + tiny_model() + " --model " + tiny_model() + " --data " + data.string() +
                   " --sigma 2 --threads 1 --out " + prefix);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["models"].size(), 2u);
    EXPECT_EQ(j["models"][0]["tunes"], 2);
    EXPECT_GT(j["models"][0]["mean_loss"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(j["models"][0]["mean_loss"].get<double>(), j["models"][1]["mean_loss"].get<double>());
    const std::string csv = slurp(prefix + ".csv");
    EXPECT_EQ(csv.rfind("position,loss_0,smoothed_0,loss_1,smoothed_1,count\n0,", 0), 0u) << csv.substr(0, 80);
    EXPECT_TRUE(fs::exists(prefix + ".png"));
    expect_one_error_line(
        run("eval music-loss --model " + tiny_model() + " --data " + (tmp_dir() / "none.abc").string()), 1,
        "does not exist");
}

TEST(CliMusic, TrainMusicFromAbcWithAConfig) {
    const fs::path data = tmp_dir() / "book.abc";
    {
        std::ofstream f(data);
        for (int i = 1; i <= 12; ++i)
            f << "X:" << i << "\nT:Tune " << i << "\nM:6/8\nL:1/8\nK:D\n|:dfa afd|ecA ABc|dfa afd|e2d d2:|\n\n";
    }
    const fs::path cfg = tmp_dir() / "tiny.json";
    std::ofstream(cfg) << R"({"version": 6, "n_layer": 2, "n_embd": 64, "ctx_len": 32, "batch": 2, "steps": 3,
                             "warmup": 1, "save_every": 0, "validation_fraction": 0.25})";
    const fs::path out = tmp_dir() / "train_music";
    Result r = run("train music -q --threads 1 --data " + data.string() + " --config " + cfg.string() + " --out " +
                   out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
    EXPECT_EQ(summary["end_step"], 3);
    EXPECT_EQ(summary["train_tunes"], 9);
    EXPECT_EQ(summary["validation_tunes"], 3);
    const double val = summary["validation_loss"];
    EXPECT_GT(val, 0.5);  // a 3-step model is far from the data…
    EXPECT_LT(val, 7.0);  // …and near ln 256 = 5.55 at worst
    EXPECT_TRUE(fs::exists(out / "model.safetensors"));
    EXPECT_TRUE(fs::exists(out / "config.json"));
    Result info = run("info --model " + (out / "model.safetensors").string());
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_EQ(nlohmann::json::parse(info.out)["vocab_size"], 256);
    // Reusing a run folder needs --resume; bad configs are one-line errors.
    expect_one_error_line(
        run("train music -q --data " + data.string() + " --config " + cfg.string() + " --out " + out.string()), 2,
        "--resume");
    expect_one_error_line(run("train music -q --data " + data.string() + " --config " + cfg.string() + " --out " +
                              (tmp_dir() / "bad_run").string() + " --precision half"),
                          2, "--precision");  // bf16 | fp32 (core trainer.h TrainPrecision)
    const fs::path bad = tmp_dir() / "bad.json";
    std::ofstream(bad) << R"({"layers": 2})";
    expect_one_error_line(run("train music -q --data " + data.string() + " --config " + bad.string() + " --out " +
                              (tmp_dir() / "bad_run").string()),
                          1, "unknown key 'layers'");
    expect_one_error_line(run("train music -q --data " + (tmp_dir() / "nope.abc").string() + " --config " +
                              cfg.string() + " --out " + (tmp_dir() / "bad_run").string()),
                          1, "does not exist");
    // --validation: a separate validation corpus replaces the split (every tune of --data trains).
    const fs::path held_out = tmp_dir() / "held_out.abc";
    std::ofstream(held_out) << "X:1\nT:Held out\nM:6/8\nL:1/8\nK:G\n|:gbd' bag|fdc cde|gbd' bag|f2g g2:|\n\n"
                            << "X:2\nT:Second\nM:6/8\nL:1/8\nK:G\n|:GBd BAG|FAc AFD|GBd BAG|F2G G2:|\n";
    const fs::path out2 = tmp_dir() / "train_music_val";
    r = run("train music -q --threads 1 --data " + data.string() + " --validation " + held_out.string() + " --config " +
            cfg.string() + " --out " + out2.string());
    ASSERT_EQ(r.code, 0) << r.err;
    summary = nlohmann::json::parse(slurp(out2 / "summary.json"));
    EXPECT_EQ(summary["train_tunes"], 12);
    EXPECT_EQ(summary["validation_tunes"], 2);
    EXPECT_EQ(summary["device"], "cpu");
    expect_one_error_line(
        run("train music -q --data " + data.string() + " --validation " + (tmp_dir() / "nope_val.abc").string() +
            " --config " + cfg.string() + " --out " + (tmp_dir() / "bad_run2").string()),
        1, "does not exist");
    // --device cuda without a CUDA LibTorch/GPU: one line, and nothing written (the device is checked first).
    if (!aviary::test::cuda_usable()) {
        const fs::path cuda_out = tmp_dir() / "cuda_run";
        expect_one_error_line(run("train music -q --device cuda --data " + data.string() + " --config " + cfg.string() +
                                  " --out " + cuda_out.string()),
                              1, "--device cuda");
        EXPECT_FALSE(fs::exists(cuda_out));
    }
}

// Issue 19 "done when": `aviary generate` on the shipped byte-level ABC model with the byte tokenizer and greedy
// sampling (temperature 0, no penalties) streams the same bytes as the music generator picking greedily (top-k 1) from
// the same prompt (chr(2) + the header `aviary music` builds + opening bars): two programs, one generation path.
TEST(CliMusic, GenerateWithTheByteTokenizerEqualsTheMusicGeneratorGreedily) {
    const std::string model = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    const fs::path out = tmp_dir() / "greedy";
    const Result music = run("music --model " + model +
                             " --count 1 --meter 6/8 --length 1/8 --key D --bars '|:d' --top-k 1 --max-bytes 160 "
                             "--threads 1 --out " +
                             out.string());
    ASSERT_EQ(music.code, 0) << music.err;
    const std::string header = "% tune_001\nX:1\nM:6/8\nL:1/8\nK:D\n|:d";
    ASSERT_EQ(music.out.rfind(header, 0), 0u) << music.out;
    const std::string tune = music.out.substr(header.size());  // the generated bytes and the closing "\n"
    ASSERT_GT(tune.size(), 40u) << music.out;
    // The same prompt for `generate`, BOS byte included (single quotes keep the control byte and the newlines).
    const Result gen = run("generate --model " + model +
                           " --tokenizer byte --temperature 0 --presence-penalty 0 --frequency-penalty 0 "
                           "--max-tokens 160 --threads 1 --prompt '\x02X:1\nM:6/8\nL:1/8\nK:D\n|:d'");
    ASSERT_EQ(gen.code, 0) << gen.err;
    EXPECT_EQ(gen.out, tune);
}
