// Tests of aviary::music: byte framing and prompts, corpus readers (.abc collections, IrishMAN JSON), the
// seeded split, the ABC checker on hand-written tunes whose verdict was confirmed with abc2midi 4.84, the
// external tools with and without them on $PATH, generation and loss by position on a tiny random model
// (sequence-mode loss checked against an independent RNN-mode computation).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/sampler.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/music/abc.h"
#include "aviary/music/abc_tools.h"
#include "aviary/music/music.h"
#include "aviary/music/music_train.h"
#include "aviary/core/train_data.h"
#include "common/error_of.h"

namespace fs = std::filesystem;
using namespace aviary::music;

namespace {

// Valid per abc2midi 4.84 (no Error/Warning lines).
const char* kGoodJig = "X:1\nT:Test Jig\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|ecA ABc|dfa afd|e2d d2:|\n";
const char* kGoodReel = "X:1\nM:4/4\nL:1/4\nK:C\nC D E F | G A B c |]\n";
// abc2midi: "Error … Missing :| at end of tune" (and an unclosed chord bracket).
const char* kBadChord = "X:1\nT:Bad\nM:4/4\nL:1/8\nK:D\n|:A2 [B2 c2|d4 e4|]\n";
// abc2midi: "Error … Guitar chord name not properly closed".
const char* kBadQuote = "X:1\nM:4/4\nL:1/8\nK:G\nGABc dedB|\"G d2 g2 z4|\n";
// abc2midi: "No tune processed. Possible missing X: field".
const char* kNoX = "T:no x\nM:4/4\nK:C\nCDEF|\n";

fs::path scratch() {
    static fs::path d = [] {
        fs::path p = fs::temp_directory_path() / ("aviary_music_test_" + std::to_string(::getpid()));
        fs::remove_all(p);
        fs::create_directories(p);
        return p;
    }();
    return d;
}

std::string write(const std::string& name, const std::string& text) {
    const fs::path p = scratch() / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
}

// Restores $PATH when it goes out of scope (used to hide the external tools).
struct PathGuard {
    std::string saved;
    explicit PathGuard(const std::string& value) : saved(std::getenv("PATH") ? std::getenv("PATH") : "") {
        setenv("PATH", value.c_str(), 1);
    }
    ~PathGuard() { setenv("PATH", saved.c_str(), 1); }
};

aviary::Model tiny_model(int version) {
    auto cfg = aviary::init_config(2, 64, version, 256);
    return aviary::Model::from_tensors(aviary::init_weights(cfg, 7));
}

}  // namespace

TEST(MusicPrompt, StartsWithBosAndWritesHeadersInOrder) {
    PromptOptions o;
    o.meter = "6/8";
    o.length = "1/8";
    o.key = "D";
    o.title = "T1";
    o.control_codes = "S:2\nB:8";
    const std::string p = build_prompt(o);
    EXPECT_EQ(p, std::string("\x02") + "X:1\nS:2\nB:8\nT:T1\nM:6/8\nL:1/8\nK:D\n");
    EXPECT_EQ(encode_abc(p).front(), kBos);
    PromptOptions bare;
    EXPECT_EQ(build_prompt(bare), std::string("\x02X:1\n"));
    PromptOptions no_len;  // K: is not written before L: exists
    no_len.meter = "3/4";
    no_len.key = "G";
    EXPECT_EQ(build_prompt(no_len), std::string("\x02X:1\nM:3/4\n"));
}

TEST(MusicPrompt, RejectsNonAsciiAndNewlinesInFields) {
    PromptOptions o;
    o.key = "D\xc3\xa9";
    EXPECT_THROW(build_prompt(o), aviary::Error);
    PromptOptions m;
    m.meter = "6/8\nK:D";
    EXPECT_THROW(build_prompt(m), aviary::Error);
}

TEST(MusicTokenizer, ByteIdsRoundTripAndFraming) {
    const std::string framed = frame_tune("X:1\nK:C\nCDEF|\n");
    auto ids = encode_abc(framed);
    ASSERT_EQ(ids.size(), framed.size());
    EXPECT_EQ(ids.front(), 2);
    EXPECT_EQ(ids.back(), 3);
    EXPECT_EQ(ids[1], int('X'));
    EXPECT_EQ(aviary::ByteTokenizer().decode(ids), "X:1\nK:C\nCDEF|\n");
    EXPECT_EQ(aviary::ByteTokenizer().decode({0, 1, 2, 65, 3}), "A");
    try {
        encode_abc(
            "X:1\nK:C\nC\xe2\x99\xaf"
            "D|\n");  // (split: "\xafD" would be one hex escape)
        FAIL() << "non-ASCII accepted";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find("position 9"), std::string::npos) << e.what();
    }
    EXPECT_THROW(encode_abc(std::string("A\x01"
                                        "B")),
                 aviary::Error);
}

TEST(MusicReader, SplitsCollectionsAtX) {
    const std::string text = "% a book header\nZ:someone\n\n" + std::string(kGoodJig) + "\n\n" + kGoodReel +
                             "X:3\r\nM:2/4\r\nK:G\r\nGA|\r\n";
    auto tunes = split_abc_collection(text, "book.abc");
    ASSERT_EQ(tunes.size(), 3u);
    EXPECT_EQ(tunes[0].abc, kGoodJig);
    EXPECT_EQ(tunes[1].abc, kGoodReel);
    EXPECT_EQ(tunes[2].abc, "X:3\nM:2/4\nK:G\nGA|\n");
    EXPECT_EQ(tunes[1].source, "book.abc#2");
    EXPECT_TRUE(split_abc_collection("no tunes here\n").empty());
    fs::create_directories(scratch() / "books");
    std::ofstream(scratch() / "books" / "a.abc") << kGoodJig;
    std::ofstream(scratch() / "books" / "b.abc") << kGoodReel << "\n" << kGoodJig;
    std::ofstream(scratch() / "books" / "notes.txt") << kGoodJig;
    EXPECT_EQ(read_abc_path((scratch() / "books").string()).size(), 3u);
    EXPECT_THROW(read_abc_path((scratch() / "missing").string()), aviary::Error);
}

TEST(MusicReader, ReadsIrishmanJson) {
    const std::string p =
        write("irishman.json",
              R"([{"control code": "S:2\nB:5\nE:0\nB:5\n", "abc notation": "X:1\nL:1/8\nM:6/8\nK:D\n dfa afd |]\n"},
                                    {"control code": "S:1\nB:4", "abc notation": "L:1/4\nM:4/4\nK:C\nCDEF|]\n"}])");
    auto t = read_irishman_json(p);
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t[0].abc, "S:2\nB:5\nE:0\nB:5\nL:1/8\nM:6/8\nK:D\n dfa afd |]\n");  // X: line removed
    EXPECT_EQ(t[1].abc, "S:1\nB:4\nL:1/4\nM:4/4\nK:C\nCDEF|]\n");
    EXPECT_THROW(read_irishman_json(write("bad.json", "{not json")), aviary::Error);
    EXPECT_THROW(read_irishman_json(write("obj.json", R"({"abc notation": "x"})")), aviary::Error);
    EXPECT_THROW(read_irishman_json(write("nofield.json", R"([{"control code": "S:1"}])")), aviary::Error);
}

// parse_music_corpus is read_music_corpus on the file's text: the same tunes or the same error (naming the file) for
// each format the name's suffix picks, and an error names whatever source it is given.
TEST(MusicReader, ParseOfTheTextIsReadOfTheFile) {
    const std::pair<const char*, std::string> cases[] = {
        {"book.abc", std::string("% header\n") + kGoodJig + "\n" + kGoodReel},
        {"no_tunes.abc", "no tunes here\n"},
        {"irish.json", R"([{"control code": "S:1", "abc notation": "X:1\nK:C\nCDEF|]\n"}])"},
        {"bad.json", "{not json"},
        {"obj.json", R"({"abc notation": "x"})"},
        {"tunes.jsonl", "{\"text\": \"\\u0002X:1\\nK:C\\nC|\\n\\u0003\"}\n \r\n{\"text\": \"X:2\\n\"}"},
        {"bad.jsonl", "{\"text\": \"X:1\\n\"}\n{\"txt\": 1}\n"},
        {"blank.jsonl", " \n\r\n"},
    };
    auto flatten = [](const std::vector<Tune>& tunes) {
        std::string out;
        for (const auto& t : tunes) out += "[" + t.source + "|" + t.abc + "]";
        return out;
    };
    size_t refused = 0;
    for (const auto& [name, text] : cases) {
        SCOPED_TRACE(name);
        const std::string path = write(name, text);
        std::string read, parsed;
        const std::string read_error = aviary::test::error_of([&] { read = flatten(read_music_corpus(path)); });
        const std::string parse_error =
            aviary::test::error_of([&] { parsed = flatten(parse_music_corpus(text, path)); });
        EXPECT_EQ(parse_error, read_error);
        EXPECT_EQ(parsed, read);
        if (read_error == "(no error)") continue;
        ++refused;
        EXPECT_NE(read_error.find(path), std::string::npos) << read_error;
        const std::string source = std::string("memory:") + name;
        const std::string error = aviary::test::error_of([&] { parse_music_corpus(text, source); });
        EXPECT_NE(error.find(source), std::string::npos) << error;
    }
    EXPECT_EQ(refused, 5u);  // all but the book, the IrishMAN list and the good JSONL
    EXPECT_EQ(parse_music_corpus(cases[0].second, "x.abc").size(), 2u);
    EXPECT_EQ(parse_music_corpus(cases[5].second, "x.jsonl")[1].source, "x.jsonl:3");
    EXPECT_EQ(parse_irishman_json(cases[2].second, "x.json")[0].abc, "S:1\nK:C\nCDEF|]\n");
}

TEST(MusicReader, SplitIsSeededDisjointAndComplete) {
    std::vector<Tune> tunes;
    for (int i = 0; i < 100; ++i) tunes.push_back({"X:" + std::to_string(i) + "\n", ""});
    std::vector<Tune> tr1, va1, tr2, va2, tr3, va3;
    split_train_validation(tunes, 0.1, 5, tr1, va1);
    split_train_validation(tunes, 0.1, 5, tr2, va2);
    split_train_validation(tunes, 0.1, 6, tr3, va3);
    ASSERT_EQ(va1.size(), 10u);
    ASSERT_EQ(tr1.size(), 90u);
    std::set<std::string> all;
    for (auto& t : tr1) all.insert(t.abc);
    for (auto& t : va1) EXPECT_TRUE(all.insert(t.abc).second) << "tune in both parts: " << t.abc;
    EXPECT_EQ(all.size(), 100u);
    for (size_t i = 0; i < va1.size(); ++i) EXPECT_EQ(va1[i].abc, va2[i].abc);
    bool differs = false;
    for (size_t i = 0; i < va1.size(); ++i) differs |= va1[i].abc != va3[i].abc;
    EXPECT_TRUE(differs);
    std::vector<Tune> two = {{"a", ""}, {"b", ""}};
    split_train_validation(two, 0.01, 1, tr1, va1);
    EXPECT_EQ(va1.size(), 1u);
    EXPECT_THROW(split_train_validation(two, 1.0, 1, tr1, va1), aviary::Error);
}

TEST(MusicChecker, AcceptsValidTunes) {
    for (const char* t : {kGoodJig, kGoodReel}) {
        AbcCheck c = check_abc(t);
        EXPECT_TRUE(c.ok) << t << (c.errors.empty() ? "" : c.errors.front());
        EXPECT_GE(c.bars, 2);
    }
    EXPECT_TRUE(check_abc(frame_tune(kGoodJig)).ok);  // framing bytes are ignored
    AbcCheck no_l = check_abc("X:1\nM:4/4\nK:C\nCDEF|GABc|\n");
    EXPECT_TRUE(no_l.ok);
    EXPECT_EQ(no_l.warnings.size(), 1u);
}

TEST(MusicChecker, RejectsBrokenTunes) {
    auto has = [](const AbcCheck& c, const std::string& needle) {
        for (auto& e : c.errors)
            if (e.find(needle) != std::string::npos) return true;
        return false;
    };
    EXPECT_TRUE(has(check_abc(kBadChord), "[ ]"));
    EXPECT_FALSE(check_abc(kBadChord).warnings.empty());  // |: never closed
    EXPECT_TRUE(has(check_abc(kBadQuote), "\""));
    EXPECT_TRUE(has(check_abc(kNoX), "X:"));
    EXPECT_TRUE(has(check_abc("X:1\nK:C\nCDEF|\n"), "M:"));
    EXPECT_TRUE(has(check_abc("X:1\nM:4/4\nL:1/8\nCDEF|\n"), "K:"));
    EXPECT_TRUE(has(check_abc("X:1\nM:4/4\nL:1/8\nK:C\n"), "no music"));
    EXPECT_TRUE(has(check_abc("X:1\nM:4/4\nL:1/8\nK:C\nCDEF GABc\n"), "bar lines"));
    EXPECT_TRUE(has(check_abc("X:1\nM:4/4\nL:1/8\nK:C\n(CDEF|GABc|\n"), "slur"));
    EXPECT_TRUE(has(check_abc(""), "empty"));
    EXPECT_TRUE(has(check_abc("X:1\nM:4/4\nL:1/8\nK:C\nC\xc3\xa9"
                              "D|\n"),
                    "non-ASCII"));
    EXPECT_FALSE(check_abc(kNoX).ok);
}

TEST(MusicChecker, AbcFileTextAddsXAndDropsFraming) {
    EXPECT_EQ(to_abc_file_text(std::string("\x02M:4/4\nK:C\nCD|\x03")), "X:1\nM:4/4\nK:C\nCD|\n");
    EXPECT_EQ(to_abc_file_text("X:5\nK:C\nC|\n"), "X:5\nK:C\nC|\n");
}

TEST(MusicTools, Abc2MidiVerdictsMatchTheChecker) {
    if (find_tool("abc2midi").empty()) GTEST_SKIP() << "abc2midi (Debian abcmidi) not installed";
    EXPECT_TRUE(abc2midi_check(write("good.abc", kGoodJig)).valid);
    EXPECT_TRUE(abc2midi_check(write("good2.abc", kGoodReel)).valid);
    for (const char* bad : {kBadChord, kBadQuote, kNoX}) {
        Abc2MidiResult r = abc2midi_check(write("bad.abc", bad));
        EXPECT_FALSE(r.valid) << bad << "\n" << r.output;
        EXPECT_FALSE(r.errors.empty());
        EXPECT_FALSE(check_abc(bad).ok) << bad;  // the checker agrees on these
    }
}

TEST(MusicTools, ExportsWhenToolsArePresent) {
    const std::string abc = write("export.abc", kGoodJig);
    const std::string mid = (scratch() / "export.mid").string();
    if (find_tool("abc2midi").empty()) GTEST_SKIP() << "abc2midi not installed";
    export_midi(abc, mid);
    ASSERT_TRUE(fs::exists(mid));
    std::ifstream f(mid, std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    EXPECT_EQ(std::string(magic, 4), "MThd");
    EXPECT_THROW(export_midi(write("nox.abc", kNoX), (scratch() / "nox.mid").string()), aviary::Error);
    if (!find_tool("abcm2ps").empty()) {
        const std::string svg = (scratch() / "export.svg").string();
        export_svg(abc, svg);
        std::ifstream s(svg);
        std::string head((std::istreambuf_iterator<char>(s)), {});
        EXPECT_NE(head.find("<svg"), std::string::npos);
    }
    if (!find_tool("fluidsynth").empty() && !default_soundfont().empty()) {
        const std::string wav = (scratch() / "export.wav").string();
        export_wav(mid, wav);
        std::ifstream w(wav, std::ios::binary);
        char riff[4] = {};
        w.read(riff, 4);
        EXPECT_EQ(std::string(riff, 4), "RIFF");
    }
}

TEST(MusicTools, MissingToolsGiveAClearMessage) {
    const std::string abc = write("absent.abc", kGoodJig);
    PathGuard hide((scratch() / "empty-bin").string());
    EXPECT_EQ(find_tool("abc2midi"), "");
    auto message = [](const std::function<void()>& f) {
        try {
            f();
        } catch (const aviary::Error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    EXPECT_NE(message([&] { abc2midi_check(abc); }).find("abcmidi"), std::string::npos);
    EXPECT_NE(message([&] { export_midi(abc, (scratch() / "x.mid").string()); }).find("abcmidi"), std::string::npos);
    EXPECT_NE(message([&] { export_svg(abc, (scratch() / "x.svg").string()); }).find("abcm2ps"), std::string::npos);
    EXPECT_NE(message([&] { export_wav(abc, (scratch() / "x.wav").string()); }).find("fluidsynth"), std::string::npos);
}

TEST(MusicGenerate, TinyModelStreamsAsciiAndRejectsBadPrompts) {
    torch::manual_seed(0);
    aviary::Model model = tiny_model(5);
    PromptOptions o;
    o.meter = "4/4";
    o.length = "1/8";
    o.key = "C";
    TuneOptions opt;
    opt.max_bytes = 40;
    std::string streamed;
    TuneResult r = generate_tune(model, build_prompt(o), opt, [&](const std::string& s) { streamed += s; });
    EXPECT_EQ(streamed, r.generated);
    EXPECT_EQ(r.text, "X:1\nM:4/4\nL:1/8\nK:C\n" + r.generated);
    for (char c : r.generated) EXPECT_LT(static_cast<unsigned char>(c), 128);
    EXPECT_TRUE(r.stop_reason == "max_bytes" || r.stop_reason == "end_of_tune");
    // Same seed, same tune; a should_stop that fires at once stops before any byte.
    EXPECT_EQ(generate_tune(model, build_prompt(o), opt).generated, r.generated);
    TuneResult s = generate_tune(model, build_prompt(o), opt, {}, [] { return true; });
    EXPECT_EQ(s.stop_reason, "stopped");
    EXPECT_TRUE(s.generated.empty());
    EXPECT_THROW(generate_tune(model, "", opt), aviary::Error);
    EXPECT_THROW(generate_tune(model, std::string("\x02X:1\nK:\xc3\xa9"), opt), aviary::Error);
}

// generate_tune runs through core generate (byte tokenizer, a Sampler without penalties); it must draw the bytes of
// the official loop, written out here as music/run.py does it: prefill, then sample_logits(T=1, top-p 0.8, top-k 8)
// from a generator seeded with the tune's seed and one decode step per byte, stop at EOS 3, keep bytes 4..127. The
// random tiny model also draws control and high bytes, which are fed but not kept.
TEST(MusicGenerate, EqualsTheOfficialLoopWithTheSameSeed) {
    torch::manual_seed(0);
    aviary::Model model = tiny_model(6);
    PromptOptions o;
    o.meter = "3/4";
    const std::string prompt = build_prompt(o);
    for (uint64_t seed : {1u, 2u, 3u}) {
        TuneOptions opt;
        opt.max_bytes = 80;
        opt.seed = seed;
        const TuneResult r = generate_tune(model, prompt, opt);
        torch::NoGradGuard no_grad;
        std::vector<int64_t> ids;
        for (unsigned char c : prompt) ids.push_back(c);
        aviary::State state = model.new_state(1);
        at::Tensor logits =
            aviary::prefill(model, torch::tensor(ids).unsqueeze(0), state).to(torch::kFloat).contiguous();
        aviary::Decoder decoder(model, 1);
        decoder.load_state(state);
        std::mt19937_64 rng(seed);
        std::string want, reason = "max_bytes";
        for (int i = 0; i < opt.max_bytes; ++i) {
            const int32_t next = aviary::sample_logits(logits.data_ptr<float>(), logits.numel(), 1.0f, 0.8f, 8, rng);
            if (next == kEos) {
                reason = "end_of_tune";
                break;
            }
            if (next > kEos && next < 128) want += char(next);
            logits = decoder.step(torch::tensor({int64_t(next)})).to(torch::kFloat).contiguous();
        }
        EXPECT_EQ(r.generated, want) << "seed " << seed;
        EXPECT_EQ(r.stop_reason, reason) << "seed " << seed;
    }
}

TEST(MusicLoss, SequenceModeMatchesRnnModeReference) {
    for (int version : {5, 6}) {
        aviary::Model model = tiny_model(version);
        const std::vector<std::string> tunes = {kGoodJig, kGoodReel};
        PositionLoss pl = loss_by_position(model, tunes, 64);
        ASSERT_EQ(pl.tunes, 2);
        // Independent reference: RNN mode, one byte at a time, log-softmax by hand in double.
        std::vector<double> sum(pl.mean.size(), 0.0);
        std::vector<int> cnt(pl.mean.size(), 0);
        double total = 0;
        int total_n = 0;
        for (const auto& t : tunes) {
            auto ids = encode_abc(frame_tune(t));
            if (ids.size() > 64) ids.resize(64);
            aviary::State st = model.new_state(1);
            for (size_t i = 0; i + 1 < ids.size(); ++i) {
                at::Tensor lg =
                    model.step(torch::tensor({int64_t(ids[i])}, torch::kInt64), st).to(torch::kFloat64).squeeze(0);
                const double mx = lg.max().item<double>();
                const double lse = mx + std::log((lg - mx).exp().sum().item<double>());
                const double nll = lse - lg[ids[i + 1]].item<double>();
                sum[i] += nll;
                cnt[i] += 1;
                total += nll;
                ++total_n;
            }
        }
        double worst = 0;
        for (size_t i = 0; i < sum.size(); ++i) {
            ASSERT_EQ(pl.count[i], cnt[i]);
            worst = std::max(worst, std::abs(pl.mean[i] - sum[i] / cnt[i]));
        }
        EXPECT_LT(worst, 1e-3) << "version " << version << ": max |seq - rnn| loss";
        EXPECT_NEAR(pl.mean_loss, total / total_n, 1e-4);
        EXPECT_GT(pl.mean_loss, 3.0);  // a fresh model knows little about 256 bytes
    }
}

TEST(MusicLoss, GaussianSmoothingKeepsConstantsAndMass) {
    std::vector<double> c(50, 2.5);
    for (double v : gaussian_smooth(c, 4)) EXPECT_NEAR(v, 2.5, 1e-12);
    std::vector<double> impulse(101, 0.0);
    impulse[50] = 1;
    auto s = gaussian_smooth(impulse, 3);
    double mass = 0;
    for (double v : s) mass += v;
    EXPECT_NEAR(mass, 1.0, 1e-3);
    EXPECT_NEAR(s[50], 1.0 / (3 * std::sqrt(2 * M_PI)), 1e-3);
    EXPECT_EQ(gaussian_smooth(impulse, 0), impulse);
}

TEST(MusicPlot, WritesAPng) {
    const std::string p = (scratch() / "plot.png").string();
    plot_curves_png(p, {{3, 2, 1.5, 1.2}, {3.5, 2.5, 2, 1.8, 1.7}}, {"eagle", "finch"}, "t", "x", "y");
    std::ifstream f(p, std::ios::binary);
    char sig[4] = {};
    f.read(sig, 4);
    EXPECT_EQ(std::string(sig + 1, 3), "PNG");
    // Written atomically: nothing but the PNG is left beside it (no temporary file).
    for (const auto& e : std::filesystem::directory_iterator(scratch()))
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    // Categorical x axis (one label per point, e.g. model widths) also draws.
    plot_curves_png(p, {{0.4, 0.9, 1.0}}, {"finch"}, "t", "width", "accuracy", {"64", "128", "256"});
    EXPECT_GT(std::filesystem::file_size(p), 100u);
    EXPECT_THROW(plot_curves_png((scratch() / "no" / "dir" / "p.png").string(), {{1, 2}}, {"a"}, "", "", ""),
                 aviary::Error);
}

// ---- training config and framing (music_train.h) ----

TEST(MusicTrain, ShippedConfigsParseAndDifferOnlyInVersion) {
    const std::string dir = std::string(AVIARY_SOURCE_DIR) + "/assets/configs/";
    for (const std::string shape : {"L4-D256", "L6-D256"}) {  // the CPU recipe and the GPU recipe
        MusicTrainConfig eagle = read_music_train_config(dir + "music-eagle-" + shape + ".json");
        MusicTrainConfig finch = read_music_train_config(dir + "music-finch-" + shape + ".json");
        EXPECT_EQ(eagle.version, 5);
        EXPECT_EQ(finch.version, 6);
        finch.version = 5;
        EXPECT_EQ(music_train_config_json(eagle), music_train_config_json(finch)) << shape;
        // The written form reads back to the same settings.
        EXPECT_EQ(music_train_config_json(parse_music_train_config(music_train_config_json(eagle))),
                  music_train_config_json(eagle));
    }
    const MusicTrainConfig gpu = read_music_train_config(dir + "music-eagle-L6-D256.json");
    EXPECT_EQ(gpu.n_layer, 6);
    EXPECT_EQ(gpu.ctx_len, 1024);
    EXPECT_EQ(gpu.validation_fraction, 0.0);  // validation comes from --validation
}

TEST(MusicTrain, ConfigErrorsNameTheKey) {
    auto message = [](const std::string& json) -> std::string {
        try {
            parse_music_train_config(json, "cfg");
        } catch (const aviary::Error& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(message(R"({"n_layers": 4})").find("unknown key 'n_layers'"), std::string::npos);
    EXPECT_NE(message(R"({"steps": "500"})").find("'steps' must be an integer"), std::string::npos);
    EXPECT_NE(message(R"({"lr": "x"})").find("'lr' must be a number"), std::string::npos);
    EXPECT_NE(message(R"({"version": 4})").find("'version' must be 5"), std::string::npos);
    EXPECT_NE(message(R"({"n_embd": 100})").find("multiple of the head size 64"), std::string::npos);
    EXPECT_NE(message(R"({"validation_fraction": 1.5})").find("validation_fraction"), std::string::npos);
    EXPECT_NE(message("[1, 2]").find("expected a JSON object"), std::string::npos);
    EXPECT_NE(message("{oops").find("not valid JSON"), std::string::npos);
    EXPECT_THROW(read_music_train_config((scratch() / "missing.json").string()), aviary::Error);
}

TEST(MusicTrain, FramingIsBosBytesEosSeparator) {
    std::vector<Tune> tunes = {{"X:1\nK:C\nC|", "a"}, {"X:2\n", "b"}};
    std::vector<int32_t> ids = frame_tunes_as_tokens(tunes);
    std::vector<int32_t> expected = {2,   'X', ':', '1', '\n', 'K', ':', 'C',  '\n', 'C',
                                     '|', 3,   0,   2,   'X',  ':', '2', '\n', 3,    0};
    EXPECT_EQ(ids, expected);
    EXPECT_THROW(frame_tunes_as_tokens({{"X:1\nT:caf\xc3\xa9\n", "utf8"}}), aviary::Error);
    EXPECT_THROW(frame_tunes_as_tokens({{std::string("X:1\n\x02", 5), "bos inside"}}), aviary::Error);
}

// The raw-ABC training path must see exactly the tokens the shared data path (`data build --tokenizer byte` on
// the framed JSONL that tools/make_music_corpus.py writes) produces: two independent routes to one stream.
TEST(MusicTrain, CorpusTokensEqualTheSharedByteDataPath) {
    const std::string jsonl = write("framed.jsonl", R"({"text": "\u0002X:1\nM:6/8\nK:D\n|:dfa afd:|\n\u0003"})"
                                                    "\n"
                                                    R"({"text": "\u0002X:1\nM:4/4\nK:G\nGABc dBGB|\n\u0003"})"
                                                    "\n");
    std::vector<Tune> tunes = read_music_corpus(jsonl);
    ASSERT_EQ(tunes.size(), 2u);
    EXPECT_EQ(tunes[0].abc.front(), 'X');  // framing stripped
    EXPECT_EQ(tunes[0].abc.back(), '\n');
    const std::vector<int32_t> ours = frame_tunes_as_tokens(tunes);
    auto shared = aviary::open_token_source(jsonl, aviary::make_text_encoder("byte"));
    ASSERT_EQ(shared->size(), int64_t(ours.size()));
    std::vector<int64_t> theirs(ours.size());
    shared->read(0, int64_t(theirs.size()), theirs.data());
    for (size_t i = 0; i < ours.size(); ++i) ASSERT_EQ(theirs[i], ours[i]) << "token " << i;
    EXPECT_THROW(read_music_corpus((scratch() / "none.abc").string()), aviary::Error);
}
