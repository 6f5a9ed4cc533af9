// Command-line contract tests (DESIGN.md): the real `aviary` binary on good and bad input — exit code 2
// for bad usage, 1 for other failures, one "error: …" line on stderr, never a signal, no partial output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "aviary/core/blas_core.h"
#include "aviary/core/tokenizer.h"
#include "common/cli_run.h"
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <random>
#include <unistd.h>
#include <string>

namespace fs = std::filesystem;

namespace {

using Result = aviary::test::CliResult;
using aviary::test::expect_one_error_line;
using aviary::test::slurp;

fs::path tmp_dir() {
    static const fs::path dir = aviary::test::scratch_dir("cli_test");
    return dir;
}

Result run(const std::string& args, const std::string& stdin_text = "") {
    return aviary::test::run_cli(args, stdin_text, tmp_dir());
}

std::string fixture(const std::string& rel) {
    return std::string(AVIARY_FIXTURES_DIR) + "/" + rel;
}
// The vocabulary set-up installs (assets/vocab/, tools/install-deps.sh), found as the CLI finds it.
std::string vocab() {
    return aviary::WorldTokenizer::default_vocab_path();
}

// Corrupt copies of a real checkpoint: truncated, random bytes, wrong keys.
std::string make_file(const std::string& name, const std::string& bytes) {
    const fs::path p = tmp_dir() / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
}

TEST(Cli, InfoPrintsTheContractKeys) {
    Result r = run("info --model " + fixture("golden/v5_fp32.pth"));
    ASSERT_EQ(r.code, 0) << r.err;
    for (const char* key : {"\"version\":5.2", "\"n_layer\":2", "\"n_embd\":128", "\"n_head\":2", "\"head_size\":64",
                            "\"vocab_size\":512", "\"ffn_dim\":448", "\"n_params\":"})
        EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
}

// A VisualRWKV file (the shipped demo model): its RWKV's contract keys and a "visual" object, not a missing-tensor
// error.
TEST(Cli, InfoDescribesAVisualRwkvFile) {
    const Result r = run("info --model " + std::string(AVIARY_SOURCE_DIR) +
                         "/assets/models/vision-demo-rwkv6-L3-D64-vit-L3-D64h4-p8-64px.safetensors");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["version"], 6);
    EXPECT_EQ(j["n_layer"], 3);
    EXPECT_EQ(j["n_embd"], 64);
    ASSERT_TRUE(j.contains("visual")) << r.out;
    EXPECT_EQ(j["visual"]["format"], "visualrwkv");
    EXPECT_EQ(j["visual"]["clip_layers"], 3);
    EXPECT_EQ(j["visual"]["clip_width"], 64);
}

// `info --system` with OPENBLAS_CORETYPE cleared: the program's start-up corrects OpenBLAS's core when it is below
// this CPU's class (blas_core.h), and the JSON says which core runs, which oneDNN ISA and which prefill paths, and
// whether the thread pools' idle workers sleep.
TEST(Cli, InfoSystemReportsTheCorrectedBlasCore) {
    const auto dir = aviary::test::scratch_dir("info_system");
    const Result r = aviary::test::run_cli("info --system", "", dir,
                                           "env -u OPENBLAS_CORETYPE -u AVIARY_BLAS_CORE_FROM -u AVIARY_BLAS_CORE "
                                           "-u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"cpu", "blas", "onednn", "engine", "threads"}) EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_FALSE(j["cpu"]["model"].get<std::string>().empty());
    std::printf("[ info ] %s\n", j.dump().c_str());
    if (j["blas"]["library"] == "OpenBLAS" && !j["blas"]["core_for_this_cpu"].get<std::string>().empty()) {
        EXPECT_GE(aviary::openblas_core_rank(j["blas"]["core"].get<std::string>()),
                  aviary::openblas_core_rank(j["blas"]["core_for_this_cpu"].get<std::string>()))
            << j["blas"].dump();
    }
    // info is not an fp32 training run: its pools' idle workers spin as the libraries default, unless the user set
    // both of the sleeping settings (threads.h)
    EXPECT_EQ(j["threads"]["idle_workers_sleep"], false) << j["threads"].dump();
    const Result quiet =
        aviary::test::run_cli("info --system", "", dir, "env OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4");
    ASSERT_EQ(quiet.code, 0) << quiet.err;
    EXPECT_EQ(nlohmann::json::parse(quiet.out)["threads"]["idle_workers_sleep"], true) << quiet.out;
    EXPECT_EQ(aviary::test::run_cli("info", "", dir).code, 2);  // neither --model nor --system
}

TEST(Cli, ForwardWritesNpyOfShapeTByV) {
    const fs::path out = tmp_dir() / "logits.npy";
    for (const char* mode : {"seq", "rnn"}) {
        fs::remove(out);
        Result r = run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens 1,5,77 --mode " + mode +
                       " --out " + out.string());
        ASSERT_EQ(r.code, 0) << r.err;
        const std::string npy = slurp(out.string());
        ASSERT_GT(npy.size(), 128u);
        EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
        EXPECT_NE(npy.find("'descr': '<f4'"), std::string::npos);
        EXPECT_NE(npy.find("'shape': (3, 512)"), std::string::npos);
        const size_t header = 10 + static_cast<unsigned char>(npy[8]) + 256 * static_cast<unsigned char>(npy[9]);
        EXPECT_EQ(header % 64, 0u);
        EXPECT_EQ(npy.size(), header + 3 * 512 * 4);
    }
}

TEST(Cli, TokenizeRoundTrip) {
    const std::string text = "The Eiffel tower is in the city of";
    Result r = run("tokenize --vocab " + vocab(), text);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "6699 304 25740 109 39990 4600 4596 22590 30449 4706\n");
    Result d = run("tokenize --decode --vocab " + vocab(), r.out);
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_EQ(d.out, text);
}

// A directory where a file is expected (read_whole_file refuses it) is one error line naming it, not an empty file.
TEST(Cli, DirectoryAsVocabularyIsOneErrorLine) {
    const std::string dir = tmp_dir().string();
    expect_one_error_line(run("tokenize --vocab " + dir, "hi"), 1, dir);
}

TEST(Cli, BadUsageExitsTwo) {
    expect_one_error_line(run(""), 2);
    expect_one_error_line(run("frobnicate"), 2);
    expect_one_error_line(run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens 1,,3 --out x.npy"), 2,
                          "--tokens");
    expect_one_error_line(run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens 1,a --out x.npy"), 2);
    expect_one_error_line(run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens -4 --out x.npy"), 2);
    expect_one_error_line(
        run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens 1 --mode fast --out x.npy"), 2);
    expect_one_error_line(run("generate --model " + fixture("golden/v6_fp32.pth") + " --prompt ''"), 2, "prompt");
    expect_one_error_line(run("tokenize --decode --vocab " + vocab(), "12 x 5"), 2);
}

TEST(Cli, BadFilesFailWithOneLineAndNoPartialOutput) {
    const std::string good = slurp(fixture("golden/v6_fp32.pth"));
    std::mt19937 rng(1);
    std::string noise(4096, '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    const std::string files[] = {
        "/nonexistent/model.pth",
        tmp_dir().string(),  // a directory
        make_file("empty.pth", ""),
        make_file("truncated.pth", good.substr(0, good.size() / 2)),
        make_file("noise.pth", noise),
        make_file("huge_header.safetensors", std::string("\xff\xff\xff\xff\xff\x00\x00\x00", 8) + "{}"),
        fixture("golden/v6_fp32.expected.safetensors"),  // a safetensors file without model keys
        make_file("no_tensors.safetensors", std::string("\x02\x00\x00\x00\x00\x00\x00\x00{}", 10)),  // none at all
    };
    const fs::path out = tmp_dir() / "never.npy";
    for (const auto& f : files) {
        fs::remove(out);
        Result r = run("forward --model " + f + " --tokens 1,2 --out " + out.string());
        expect_one_error_line(r, 1);
        EXPECT_NE(r.err.find(f), std::string::npos) << "the error does not name the file: " << r.err;
        EXPECT_FALSE(fs::exists(out)) << "partial output left for " << f;
        Result i = run("info --model " + f);
        expect_one_error_line(i, 1);
        Result g = run("generate --model " + f + " --prompt hi --max-tokens 1");
        expect_one_error_line(g, 1);
        EXPECT_NE(g.err.find(f), std::string::npos) << "the error does not name the file: " << g.err;
    }
}

TEST(Cli, TokenOutOfRangeFails) {
    const fs::path out = tmp_dir() / "oor.npy";
    Result r = run("forward --model " + fixture("golden/v5_fp32.pth") + " --tokens 1,512 --out " + out.string());
    expect_one_error_line(r, 1, "512");
    EXPECT_FALSE(fs::exists(out));
}

TEST(Cli, ConvertRoundTripKeepsLogits) {
    const fs::path st = tmp_dir() / "v6.safetensors", a = tmp_dir() / "a.npy", b = tmp_dir() / "b.npy";
    ASSERT_EQ(run("convert " + fixture("golden/v6_fp32.pth") + " " + st.string()).code, 0);
    ASSERT_EQ(run("forward --model " + fixture("golden/v6_fp32.pth") + " --tokens 3,4,5 --out " + a.string()).code, 0);
    ASSERT_EQ(run("forward --model " + st.string() + " --tokens 3,4,5 --out " + b.string()).code, 0);
    EXPECT_EQ(slurp(a.string()), slurp(b.string()));
    Result bad = run("convert " + fixture("golden/v6_fp32.pth") + " " + (tmp_dir() / "x.bin").string());
    expect_one_error_line(bad, 2);
}

// `bench --json`: the contract keys plus the CPU, the median decode step and the prefill compute floor; without --dtype
// the matrices keep the checkpoint's precision (a bf16 file benchmarks bf16, an fp32 one fp32), --dtype overrides.
TEST(Cli, BenchJsonKeysAndTheCheckpointsPrecision) {
    const std::string common = " --prompt-tokens 16 --decode-tokens 4 --decode-batch 2 --threads 1 --json";
    auto last_json = [](const Result& r) {
        const std::string out = r.out.substr(0, r.out.find_last_not_of('\n') + 1);
        return nlohmann::json::parse(out.substr(out.rfind('\n') + 1));
    };
    const Result bf = run("bench -m " + fixture("golden/v6_bf16.pth") + common);
    ASSERT_EQ(bf.code, 0) << bf.err;
    const auto j = last_json(bf);
    for (const char* key :
         {"prefill_tok_s", "decode_tok_s", "floor_decode_tok_s", "weight_bytes_per_token", "read_gbps", "cpu",
          "gemm_gflops", "prefill_flops_per_token", "floor_prefill_tok_s", "prefill_gemm"})
        EXPECT_TRUE(j.contains(key)) << key << " in " << j.dump();
    EXPECT_EQ(j["dtype"], "bf16");
    EXPECT_GT(j["read_gbps"].get<double>(), 0.5);
    EXPECT_GT(j["floor_prefill_tok_s"].get<double>(), 0.0);
    // the median decode step (CPU) and its fraction of the same floor
    ASSERT_TRUE(j.contains("decode_median_tok_s")) << j.dump();
    EXPECT_GT(j["decode_median_tok_s"].get<double>(), 0.0);
    EXPECT_NEAR(j["floor_fraction_median"].get<double>(),
                j["decode_median_tok_s"].get<double>() / j["floor_decode_tok_s"].get<double>(), 1e-9);
    // the prefill floor divides by the fastest path's rate, so a slower path forced on the engine stays under it
    EXPECT_GE(j["gemm_gflops_fastest"].get<double>(), j["gemm_gflops"].get<double>());
    EXPECT_NEAR(j["floor_prefill_tok_s"].get<double>(),
                j["gemm_gflops_fastest"].get<double>() * 1e9 / j["prefill_flops_per_token"].get<double>(),
                1e-6 * j["floor_prefill_tok_s"].get<double>());
    const Result fp = run("bench -m " + fixture("golden/v6_fp32.pth") + common);
    ASSERT_EQ(fp.code, 0) << fp.err;
    EXPECT_EQ(last_json(fp)["dtype"], "fp32");
    const Result forced = run("bench -m " + fixture("golden/v6_bf16.pth") + common + " --dtype fp32");
    ASSERT_EQ(forced.code, 0) << forced.err;
    EXPECT_EQ(last_json(forced)["dtype"], "fp32");
}

TEST(Cli, ConvertToPthAndBackKeepsLogitsByteIdentical) {
    // .pth (torch.save) -> .safetensors -> .pth (write_pth): the same model, so the same logits bit for bit.
    const fs::path st = tmp_dir() / "v6_back.safetensors", pth = tmp_dir() / "v6_back.pth";
    ASSERT_EQ(run("convert " + fixture("golden/v6_fp32.pth") + " " + st.string()).code, 0);
    Result r = run("convert " + st.string() + " " + pth.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(slurp(pth.string()).substr(0, 4), "PK\x03\x04");
    std::string logits[3];
    const std::string models[3] = {fixture("golden/v6_fp32.pth"), st.string(), pth.string()};
    for (int k = 0; k < 3; ++k) {
        const fs::path out = tmp_dir() / ("logits_" + std::to_string(k) + ".npy");
        fs::remove(out);
        Result f = run("forward --model " + models[k] + " --tokens 3,4,5,77 --out " + out.string());
        ASSERT_EQ(f.code, 0) << models[k] << ": " << f.err;
        logits[k] = slurp(out.string());
        ASSERT_GT(logits[k].size(), 4u * 512u) << models[k];
    }
    EXPECT_EQ(logits[1], logits[0]) << "safetensors copy";
    EXPECT_EQ(logits[2], logits[0]) << "pth written by Aviary";
    // Only .safetensors and .pth are accepted as outputs.
    expect_one_error_line(run("convert " + st.string() + " " + (tmp_dir() / "x.pt").string()), 2, ".pth");
}

TEST(Cli, GenerateStreamsText) {
    Result r = run("generate --model " + fixture("golden/v6_fp32.pth") + " --vocab " + vocab() +
                   " --prompt 'x' --max-tokens 8 --seed 3");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(r.out.empty());
    Result again = run("generate --model " + fixture("golden/v6_fp32.pth") + " --vocab " + vocab() +
                       " --prompt 'x' --max-tokens 8 --seed 3");
    EXPECT_EQ(r.out, again.out);  // same seed, same text
}

TEST(Cli, HelpEverywhere) {
    for (const char* sub : {"", "info", "forward", "tokenize", "generate", "chat", "convert", "bench"}) {
        Result r = run(std::string(sub) + " --help");
        EXPECT_EQ(r.code, 0) << sub;
        EXPECT_NE(r.out.find("--"), std::string::npos) << sub;
    }
}

}  // namespace

// A tiny random model with the full World vocabulary (so real prompts tokenize in range), written once.
#include "aviary/core/model_shapes.h"

namespace {

std::string world_vocab_model() {
    static const std::string path = [] {
        aviary::ModelConfig c;
        c.version = 6, c.n_layer = 1, c.n_embd = 64, c.n_att = 64, c.n_head = 1, c.head_size = 64;
        c.vocab_size = 65536, c.ffn_dim = 224, c.mix_lora_rank = 8, c.decay_lora_rank = 16;
        const std::string p = (tmp_dir() / "world_tiny.safetensors").string();
        aviary::write_safetensors(p, aviary::random_weights(c, 11));
        return p;
    }();
    return path;
}

TEST(Cli, ChatKeepsStateAcrossTurnsAndSavesIt) {
    const fs::path state = tmp_dir() / "chat_state.safetensors";
    fs::remove(state);
    const std::string input = "hi\n/save " + state.string() + "\nhow are you?\n/load /nonexistent/state\n/quit\n";
    Result r = run("chat --model " + world_vocab_model() + " --vocab " + vocab() + " --max-tokens 5 --seed 1", input);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), ':'), 2) << r.out;  // two "Assistant:" replies
    EXPECT_TRUE(fs::exists(state));
    EXPECT_NE(r.err.find("error: "), std::string::npos) << "a bad /load reports and continues";
    // The saved state restores the conversation: loading it and asking again gives the same reply as a
    // session that never stopped.
    Result a = run("chat --model " + world_vocab_model() + " --vocab " + vocab() + " --max-tokens 5 --seed 1",
                   "hi\nhow are you?\n");
    Result b = run("chat --model " + world_vocab_model() + " --vocab " + vocab() + " --max-tokens 5 --seed 1 --state " +
                       state.string(),
                   "how are you?\n");
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    const std::string second_reply = a.out.substr(a.out.find("Assistant:", 1));
    EXPECT_EQ(second_reply, b.out);
}

// Issue 20: a state saved from another model (the shipped 256-id ABC model, width 256) is refused by /load and by
// --state with one error naming the file, and the chat goes on with its own state: the next message is answered.
TEST(Cli, ChatRefusesAnotherModelsStateAndContinues) {
    const fs::path foreign = tmp_dir() / "abc_model_state.safetensors";
    const std::string abc = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    Result saved = run("chat --model " + abc + " --max-tokens 3 --seed 1 --threads 1",
                       "X:1\n/save " + foreign.string() + "\n/quit\n");
    ASSERT_EQ(saved.code, 0) << saved.err;
    ASSERT_TRUE(fs::exists(foreign));
    const std::string chat = "chat --model " + world_vocab_model() + " --vocab " + vocab() + " --max-tokens 5 --seed 1";
    Result r = run(chat, "/load " + foreign.string() + "\nhi\n/quit\n");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("error: '" + foreign.string() + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("another model"), std::string::npos) << r.err;
    // The reply equals a chat that never tried the load.
    Result plain = run(chat, "hi\n");
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(r.out, plain.out);
    expect_one_error_line(run(chat + " --state " + foreign.string(), "hi\n"), 1, foreign.string());
}

TEST(Cli, GenerateWithWorldVocabularyAndStopSequence) {
    Result r = run("generate --model " + world_vocab_model() + " --vocab " + vocab() +
                   " --prompt 'User: hi' --max-tokens 20 --seed 2 --stop e");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find('e'), std::string::npos) << "the stop sequence is not printed: " << r.out;
}

// `--tokenizer` (DESIGN.md: generate|chat … [--tokenizer world|byte], default by vocabulary size): the shipped ABC
// model has 256 ids, so without the option it gets the byte tokenizer — the same text as asking for it — and a World
// tokenizer for it is one error line naming the file; an unknown kind is bad usage.
TEST(Cli, GenerateAndChatPickTheTokenizerByVocabularySize) {
    const std::string model = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    const std::string common =
        "generate --model " + model + " --max-tokens 40 --seed 4 --threads 1 --prompt 'X:1\nL:1/8\n'";
    const Result automatic = run(common);
    ASSERT_EQ(automatic.code, 0) << automatic.err;
    EXPECT_GT(automatic.out.size(), 5u) << automatic.out;
    const Result byte = run(common + " --tokenizer byte");
    ASSERT_EQ(byte.code, 0) << byte.err;
    EXPECT_EQ(automatic.out, byte.out);
    const Result world = run(common + " --tokenizer world --vocab " + vocab());
    expect_one_error_line(world, 1, "--tokenizer byte");
    EXPECT_NE(world.err.find(model), std::string::npos) << world.err;
    EXPECT_TRUE(world.out.empty()) << world.out;
    expect_one_error_line(run(common + " --tokenizer bpe"), 2, "--tokenizer");

    const Result chat = run("chat --model " + model + " --max-tokens 8 --seed 2 --threads 1", "X:1\n/quit\n");
    ASSERT_EQ(chat.code, 0) << chat.err;
    EXPECT_EQ(chat.out.rfind("Assistant:", 0), 0u) << chat.out;
    expect_one_error_line(run("chat --model " + model + " --tokenizer world --vocab " + vocab(), "hi\n"), 1,
                          "--tokenizer byte");
}

}  // namespace
