// `aviary tag`, `aviary train audio`, `aviary eval audioset` (apps/cli/cmd_audio.cpp) through the real binary:
// bad input gives one `error:` line and exit 1 (2 for usage), the shipped demo model tags white noise and silence
// correctly, a tiny training run writes a loadable model, resume is bit-exact, and missing clips are reported
// without failing; `tag --stats` adds one consistent JSON line of timings.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/tagger.h"
#include "aviary/core/checkpoint.h"
#include "common/cli_run.h"
#include "wav_writer.h"

namespace aviary::test {
namespace {

namespace fs = std::filesystem;

std::vector<float> tone(double hz, double seconds, int rate, double amp = 0.5) {
    std::vector<float> x(static_cast<size_t>(seconds * rate));
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(amp * std::sin(2 * M_PI * hz * double(i) / rate));
    return x;
}
std::vector<float> noise(double seconds, int rate, uint32_t seed) {
    std::vector<float> x(static_cast<size_t>(seconds * rate));
    uint32_t s = seed;
    for (auto& v : x) {
        s = s * 1664525u + 1013904223u;
        v = float((double(s) / 4294967296.0 - 0.5) * 0.8);
    }
    return x;
}

TEST(CliAudio, TagUsageAndBadFiles) {
    auto dir = scratch_dir("cli_audio_bad");
    expect_one_error_line(run_cli("tag", "", dir), 2);
    std::ofstream(dir / "empty.wav").close();
    std::ofstream(dir / "text.wav") << "hello\n";
    write_wav((dir / "nan.wav").string(), {0.1f, std::nanf(""), 0.0f}, 1, 16000, true);
    write_wav((dir / "zero.wav").string(), {}, 1, 16000);
    const std::string model = audio::default_model_path();
    for (const char* f : {"empty.wav", "text.wav", "nan.wav", "zero.wav", "missing.wav"}) {
        auto r = run_cli("tag --model " + model + " " + (dir / f).string(), "", dir);
        expect_one_error_line(r, 1, f);
        EXPECT_TRUE(r.out.empty()) << r.out;
    }
    // a file that is not a model
    auto r = run_cli("tag --model " + (dir / "text.wav").string() + " " + (dir / "text.wav").string(), "", dir);
    expect_one_error_line(r, 1, "text.wav");
    expect_one_error_line(run_cli("tag --top-k 0 x.wav", "", dir), 2);
    // a language-model .pth is read as what it is and refused as no AudioRWKV model, naming the file
    const std::string lm = std::string(AVIARY_FIXTURES_DIR) + "/golden/v6_fp32.pth";
    write_wav((dir / "tone.wav").string(), std::vector<float>(16000, 0.1f), 1, 16000);
    expect_one_error_line(run_cli("tag --model " + lm + " " + (dir / "tone.wav").string(), "", dir), 1,
                          "v6_fp32.pth' is not an AudioRWKV model");
}

TEST(CliAudio, DemoModelTagsSilenceAndNoise) {
    // What the shipped demo model gets right (docs/AUDIO.md: held-out AP Silence 1.00, Noise 0.93; it is weak on
    // pure sines, AP 0.48, so no sine is asserted here). White noise at 48 kHz stereo (resampled and mixed by the
    // reader) and 2 s of digital silence at 32 kHz.
    auto dir = scratch_dir("cli_audio_demo");
    std::vector<float> st;
    for (float v : noise(2.0, 48000, 7)) {
        st.push_back(v);
        st.push_back(v);
    }
    write_wav((dir / "noise.wav").string(), st, 2, 48000);
    write_wav((dir / "silence.wav").string(), std::vector<float>(64000, 0.0f), 1, 32000);
    auto r =
        run_cli("tag --json --top-k 3 " + (dir / "noise.wav").string() + " " + (dir / "silence.wav").string(), "", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string l1, l2;
    std::getline(lines, l1);
    std::getline(lines, l2);
    auto j1 = nlohmann::json::parse(l1), j2 = nlohmann::json::parse(l2);
    ASSERT_EQ(j1["tags"].size(), 3u);
    EXPECT_EQ(j1["tags"][0]["label"], "Noise") << l1;
    EXPECT_GT(j1["tags"][0]["score"].get<double>(), 0.5) << l1;
    EXPECT_GE(j1["tags"][0]["score"].get<double>(), j1["tags"][1]["score"].get<double>()) << l1;
    EXPECT_EQ(j2["tags"][0]["label"], "Silence") << l2;
    EXPECT_GT(j2["tags"][0]["score"].get<double>(), 0.5) << l2;
    auto text = run_cli("tag " + (dir / "silence.wav").string(), "", dir);  // default --top-k 5, text form
    ASSERT_EQ(text.code, 0) << text.err;
    EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 6) << text.out;
    EXPECT_NE(text.out.find("Silence"), std::string::npos) << text.out;
}

// `tag --stats`: after the tags, one JSON line on stderr with exactly the contract's keys (DESIGN.md: load_s, audio_s,
// prefill_s, decode_s, ttft_s, tokens, peak_rss_mb) plus input_tokens (non-negative; the times of two files are
// summed, ttft_s is the first file's), and the same stdout as without it.
TEST(CliAudio, TagStatsIsOneConsistentJsonLine) {
    auto dir = scratch_dir("cli_audio_stats");
    write_wav((dir / "silence.wav").string(), std::vector<float>(32000, 0.0f), 1, 32000);
    write_wav((dir / "noise.wav").string(), noise(1.0, 16000, 3), 1, 16000);
    const std::string files = (dir / "silence.wav").string() + " " + (dir / "noise.wav").string();
    auto plain = run_cli("tag --json " + files, "", dir);
    ASSERT_EQ(plain.code, 0) << plain.err;
    auto r = run_cli("tag --json --stats " + files, "", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, plain.out);
    std::vector<nlohmann::json> lines;
    std::istringstream err(r.err);
    for (std::string l; std::getline(err, l);)
        if (!l.empty() && l[0] == '{') lines.push_back(nlohmann::json::parse(l));
    ASSERT_EQ(lines.size(), 1u) << r.err;
    const nlohmann::json& j = lines[0];
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"audio_s", "decode_s", "input_tokens", "load_s", "peak_rss_mb",
                                              "prefill_s", "tokens", "ttft_s"}))
        << r.err;
    for (const auto& k : keys) {
        ASSERT_TRUE(j[k].is_number()) << k << ": " << r.err;
        EXPECT_GE(j[k].get<double>(), 0.0) << k << ": " << r.err;
    }
    EXPECT_GT(j["prefill_s"].get<double>(), 0.0) << r.err;  // two forwards of a 12-layer model take some time
    EXPECT_GT(j["peak_rss_mb"].get<double>(), 0.0) << r.err;
    EXPECT_EQ(j["decode_s"].get<double>(), 0.0);
    EXPECT_EQ(j["tokens"].get<int64_t>(), 0);
    // the first file's time to its tags: within the two files' summed audio + model time, and more than zero
    EXPECT_GT(j["ttft_s"].get<double>(), 0.0);
    EXPECT_LE(j["ttft_s"].get<double>(), j["audio_s"].get<double>() + j["prefill_s"].get<double>() + 1e-9);
    // the demo model's patch grid, twice (two files): grid_t · grid_f each
    EXPECT_GT(j["input_tokens"].get<int64_t>(), 0);
    EXPECT_EQ(j["input_tokens"].get<int64_t>() % 2, 0);
}

// A 6-clip data set of two classes (Sine wave 501, White noise 520) in the AST JSON format, plus one missing clip.
std::string tiny_set(const fs::path& dir) {
    nlohmann::json items = nlohmann::json::array();
    for (int i = 0; i < 6; ++i) {
        const auto p = dir / ("c" + std::to_string(i) + ".wav");
        if (i % 2)
            write_wav(p.string(), tone(300 + 200 * i, 0.5, 32000), 1, 32000);
        else
            write_wav(p.string(), noise(0.5, 32000, uint32_t(i + 1)), 1, 32000);
        items.push_back({{"wav", p.string()}, {"labels", i % 2 ? "/m/01v_m0" : "/m/0chx_"}});
    }
    items.push_back({{"wav", (dir / "absent.wav").string()}, {"labels", "/m/01v_m0"}});
    std::ofstream(dir / "set.json") << nlohmann::json({{"data", items}}).dump();
    return (dir / "set.json").string();
}

TEST(CliAudio, TrainEvalAndExactResume) {
    auto dir = scratch_dir("cli_audio_train");
    const std::string data = tiny_set(dir);
    const std::string common = "train audio --data " + data + " --eval-data " + data +
                               " --clip-seconds 0.5 --layers 1 --batch 2 --warmup 1 --spec-time 8 --threads 1";
    auto straight = run_cli(common + " --steps 4 --out " + (dir / "a").string(), "", dir);
    ASSERT_EQ(straight.code, 0) << straight.err;
    EXPECT_NE(straight.err.find("1 of 7 listed clips are missing"), std::string::npos) << straight.err;
    auto part = run_cli(common + " --steps 2 --out " + (dir / "b").string(), "", dir);
    ASSERT_EQ(part.code, 0) << part.err;
    // What a SIGKILL in step 3 leaves (tools/kill_resume.py found these kept: the log then held steps 1, 2, 3, 3, 4,
    // and the temporary stayed): step 3 logged after the step-2 checkpoint, a line cut mid-write, and the
    // temporary of an output write.
    std::ofstream(dir / "b" / "train_log.jsonl", std::ios::app) << "{\"step\": 3, \"loss\": 0.5}\n{\"step\": 4, \"lo";
    std::ofstream(dir / "b" / ".model.safetensors.tmp-Zx81Qa") << "half";
    auto rest = run_cli(common + " --steps 4 --resume --out " + (dir / "b").string(), "", dir);
    ASSERT_EQ(rest.code, 0) << rest.err;
    EXPECT_FALSE(fs::exists(dir / "b" / ".model.safetensors.tmp-Zx81Qa"));
    {
        std::ifstream log(dir / "b" / "train_log.jsonl");
        std::vector<int64_t> steps;
        for (std::string l; std::getline(log, l);) steps.push_back(nlohmann::json::parse(l)["step"].get<int64_t>());
        EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
    }
    auto out = nlohmann::json::parse(rest.out);
    EXPECT_EQ(out["start_step"], 2);
    EXPECT_EQ(out["end_step"], 4);
    TensorList a = read_safetensors((dir / "a" / "model.safetensors").string());
    TensorList b = read_safetensors((dir / "b" / "model.safetensors").string());
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_TRUE(a[i].tensor.equal(b[i].tensor)) << a[i].name << " differs after resume";
    auto ev = run_cli(
        "eval audioset --quiet --json --model " + (dir / "a" / "model.safetensors").string() + " --data " + data, "",
        dir);
    ASSERT_EQ(ev.code, 0) << ev.err;
    auto j = nlohmann::json::parse(ev.out);
    EXPECT_EQ(j["clips"], 6);
    EXPECT_EQ(j["classes_scored"], 2);
    EXPECT_GE(j["map"].get<double>(), 0.0);
    EXPECT_LE(j["map"].get<double>(), 1.0);
    expect_one_error_line(run_cli(common + " --steps 1 --precision fp16 --out " + (dir / "c").string(), "", dir), 2,
                          "--precision");  // bf16 | fp32 (core trainer.h TrainPrecision)
    expect_one_error_line(
        run_cli("eval audioset --model " + (dir / "nope.safetensors").string() + " --data " + data, "", dir), 1,
        "nope.safetensors");
    expect_one_error_line(run_cli("eval audioset --model " + (dir / "a" / "model.safetensors").string() + " --data " +
                                      (dir / "x.csv").string(),
                                  "", dir),
                          1, "needs a clip directory");
}

}  // namespace
}  // namespace aviary::test
