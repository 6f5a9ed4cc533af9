// Command-line tests of `aviary data build`, `aviary train text` and `aviary
// eval text` (issue 3): the real binary on a tiny byte-tokenized corpus —
// outputs, the JSONL log, a SIGKILL during training followed by --resume giving
// the same final weights as an uninterrupted run, and one-line errors with exit
// codes 1/2 on bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "aviary/core/checkpoint.h"
#include "aviary/core/model_init.h"
#include "common/cli_run.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

using Result = aviary::test::CliResult;
using aviary::test::slurp;

fs::path tmp_dir() {
    static const fs::path dir = aviary::test::scratch_dir("cli_train_test");
    return dir;
}

Result run(const std::string& args) {
    return aviary::test::run_cli(args, "", tmp_dir());
}

using aviary::test::expect_one_error_line;

std::string corpus() {
    return aviary::test::tiny_corpus(tmp_dir());
}

const std::string kTrainArgs =
    " --tokenizer byte --model init:2,64,6 --ctx-len 32 --batch 2 --lr 3e-3 "
    "--lr-final 1e-3 "
    "--warmup 2 --threads 1 -q";

}  // namespace

TEST(CliTrain, DataBuildTrainEvalInfo) {
    const std::string prefix = (tmp_dir() / "fox").string();
    Result b = run("data build --in " + corpus() + " --out " + prefix + " --tokenizer byte -q");
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_NE(b.out.find("\"documents\":30"), std::string::npos) << b.out;
    EXPECT_TRUE(fs::exists(prefix + ".bin") && fs::exists(prefix + ".idx"));

    const fs::path out = tmp_dir() / "run";
    Result t = run("train text --data " + prefix + " --out " + out.string() + " --steps 30" + kTrainArgs);
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_NE(t.out.find("\"end_step\":30"), std::string::npos) << t.out;
    const std::string log = slurp(out / "train_log.jsonl");
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 30);
    for (const char* key : {"\"step\"", "\"loss\"", "\"lr\"", "\"tokens\"", "\"tokens_per_s\"", "\"elapsed\""})
        EXPECT_NE(log.find(key), std::string::npos) << key;

    Result info = run("info --model " + (out / "model.safetensors").string());
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_NE(info.out.find("\"n_layer\":2"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("\"vocab_size\":256"), std::string::npos) << info.out;

    Result e = run("eval text --model " + (out / "model.safetensors").string() + " --data " + corpus() +
                   " --tokenizer byte --ctx-len 64");
    ASSERT_EQ(e.code, 0) << e.err;
    for (const char* key : {"\"loss\"", "\"bits_per_byte\"", "\"perplexity\"", "\"tokens\""})
        EXPECT_NE(e.out.find(key), std::string::npos) << key << " in " << e.out;
}

TEST(CliTrain, KilledRunResumesToTheSameWeights) {
    const std::string args = " --data " + corpus() + " --steps 16 --save-every 4" + kTrainArgs;
    const fs::path a = tmp_dir() / "straight", b = tmp_dir() / "killed";
    Result ra = run("train text --out " + a.string() + args);
    ASSERT_EQ(ra.code, 0) << ra.err;

    // Start the second run, SIGKILL it as soon as its first checkpoint exists,
    // then resume.
    const std::string cmd =
        "exec " + std::string(AVIARY_CLI_PATH) + " train text --out " + b.string() + args + " >/dev/null 2>&1";
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!fs::exists(b / "checkpoints" / "step-00000004") && std::chrono::steady_clock::now() < deadline) {
        int st;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    Result rb = run("train text --out " + b.string() + args + " --resume");
    ASSERT_EQ(rb.code, 0) << rb.err;
    EXPECT_EQ(slurp(a / "model.safetensors"), slurp(b / "model.safetensors")) << "weights differ after resume";
    const std::string log = slurp(b / "train_log.jsonl");
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 16);
}

TEST(CliTrain, BadInputIsOneErrorLine) {
    const fs::path out = tmp_dir() / "bad";
    expect_one_error_line(run("train text --data " + (tmp_dir() / "missing.jsonl").string() + " --out " + out.string() +
                              " --steps 2" + kTrainArgs),
                          1, "does not exist");
    expect_one_error_line(run("train text --data " + corpus() + " --out " + out.string() + " --steps 2" +
                              " --tokenizer byte --model init:2,64 -q"),
                          2, "init:N_LAYER,N_EMBD,VERSION");
    // A truncated .idx.
    const std::string prefix = (tmp_dir() / "trunc").string();
    ASSERT_EQ(run("data build --in " + corpus() + " --out " + prefix + " --tokenizer byte -q").code, 0);
    fs::resize_file(prefix + ".idx", 40);
    expect_one_error_line(run("eval text --model init --data " + prefix + " --tokenizer byte"), 1, "truncated");
    // Token ids beyond the model's vocabulary: a World-vocabulary-sized id in a
    // byte model.
    {
        const std::string big = (tmp_dir() / "big").string();
        std::string idx("MMIDIDX\0\0", 9);
        auto put = [&](uint64_t v, int n) {
            for (int i = 0; i < n; ++i) idx.push_back(char((v >> (8 * i)) & 0xff));
        };
        put(1, 8), put(8, 1), put(1, 8), put(2, 8), put(100, 4), put(0, 8), put(0, 8), put(1, 8);
        std::ofstream(big + ".idx", std::ios::binary) << idx;
        std::string bin;
        for (int i = 0; i < 100; ++i) bin += std::string("\x10\x27", 2);  // id 10000
        std::ofstream(big + ".bin", std::ios::binary) << bin;
        expect_one_error_line(run("train text --data " + big + " --out " + out.string() + " --steps 2 --ctx-len 8" +
                                  " --tokenizer byte --model init:2,64,6 -q"),
                              1, "token id 10000");
    }
    // Resuming a checkpoint of another model shape; and an existing run without
    // --resume.
    const fs::path run_dir = tmp_dir() / "shape";
    ASSERT_EQ(run("train text --data " + corpus() + " --out " + run_dir.string() + " --steps 1" + kTrainArgs).code, 0);
    expect_one_error_line(run("train text --data " + corpus() + " --out " + run_dir.string() +
                              " --steps 2 --resume --tokenizer byte --model "
                              "init:2,128,6 --ctx-len 32 -q"),
                          1, "another model");
    expect_one_error_line(
        run("train text --data " + corpus() + " --out " + run_dir.string() + " --steps 2" + kTrainArgs), 2, "--resume");
}

// --precision (trainer.h TrainPrecision): bf16 and fp32 are accepted and reported in the summary line and in
// trainer.json; left out, the default (bf16 on a CPU with AMX-BF16, else fp32) is reported; any other value is a
// usage error (exit 2, one `error:` line) before anything is written. (The music, vision and audio `train`
// commands share the option: their tests check the rejection.)
TEST(CliTrain, PrecisionIsAcceptedReportedOrRejected) {
    for (const std::string p : {"fp32", "bf16", ""}) {
        const fs::path out = tmp_dir() / ("precision_" + (p.empty() ? std::string("default") : p));
        Result r = run("train text --data " + corpus() + " --out " + out.string() + " --steps 2" + kTrainArgs +
                       (p.empty() ? "" : " --precision " + p));
        ASSERT_EQ(r.code, 0) << r.err;
        const std::string reported = nlohmann::json::parse(r.out)["precision"].get<std::string>();
        if (p.empty())
            EXPECT_TRUE(reported == "bf16" || reported == "fp32") << r.out;
        else
            EXPECT_EQ(reported, p) << r.out;
        const fs::path checkpoint = nlohmann::json::parse(r.out)["checkpoint"].get<std::string>();
        const auto meta = nlohmann::json::parse(slurp(checkpoint / "trainer.json"));
        EXPECT_EQ(meta["precision"], reported);
    }
    const fs::path bad = tmp_dir() / "precision_bad";
    for (const char* p : {"fp16", "BF16", "auto"})
        expect_one_error_line(run("train text --data " + corpus() + " --out " + bad.string() + " --steps 2" +
                                  kTrainArgs + " --precision " + p),
                              2, "--precision");
    EXPECT_FALSE(fs::exists(bad));
}

// fp32 training starts with both thread pools' idle workers asleep (threads.h, blas_core.h ensure_start_up_env): the
// running process's environment holds OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT=4 once it trains with
// --precision fp32 from an environment without them; a user's own OMP_WAIT_POLICY is kept (nothing added); bf16
// runs get neither; `research mqar`, whose runs train, the same. Read from /proc/<pid>/environ while the run is in its
// first steps, then the run is killed.
TEST(CliTrain, Fp32RunsStartWithIdleWorkersAsleep) {
    auto environ_while_training = [&](const std::string& env, const std::string& precision, const std::string& name,
                                      bool research = false) {
        const fs::path out = tmp_dir() / ("pools_" + name);
        fs::remove_all(out);
        const std::string run_args =
            research ? " research mqar --arch 5 --dims 64 --seq 64 --steps 100000 --batch 4 -q -o " + out.string()
                     : " train text --out " + out.string() + " --data " + corpus() + " --steps 5000" + kTrainArgs;
        // a file the run writes once parsed, past every start-up re-exec: the first step's log line, or research's
        // config.json
        const fs::path ready = out / (research ? "config.json" : "train_log.jsonl");
        const std::string cmd = "exec env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT " + env + " " +
                                std::string(AVIARY_CLI_PATH) + run_args + " --precision " + precision +
                                " >/dev/null 2>&1";
        pid_t pid = ::fork();
        if (pid == 0) {
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        std::string environ;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            int st;
            if (::waitpid(pid, &st, WNOHANG) == pid) return std::string("exited");
            if (fs::exists(ready)) {
                environ = slurp("/proc/" + std::to_string(pid) + "/environ");
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        std::replace(environ.begin(), environ.end(), '\0', '\n');
        return "\n" + environ;
    };
    const std::string fp32 = environ_while_training("", "fp32", "fp32");
    EXPECT_NE(fp32.find("\nOMP_WAIT_POLICY=passive\n"), std::string::npos) << fp32;
    EXPECT_NE(fp32.find("\nOPENBLAS_THREAD_TIMEOUT=4\n"), std::string::npos) << fp32;
    const std::string user = environ_while_training("OMP_WAIT_POLICY=active", "fp32", "user");
    EXPECT_NE(user.find("\nOMP_WAIT_POLICY=active\n"), std::string::npos) << user;
    EXPECT_EQ(user.find("OPENBLAS_THREAD_TIMEOUT"), std::string::npos) << user;
    const std::string bf16 = environ_while_training("", "bf16", "bf16");
    EXPECT_NE(bf16, "exited");
    EXPECT_EQ(bf16.find("OMP_WAIT_POLICY"), std::string::npos) << bf16;
    EXPECT_EQ(bf16.find("OPENBLAS_THREAD_TIMEOUT"), std::string::npos) << bf16;
    const std::string research = environ_while_training("", "fp32", "research", true);
    EXPECT_NE(research.find("\nOMP_WAIT_POLICY=passive\n"), std::string::npos) << research;
    EXPECT_NE(research.find("\nOPENBLAS_THREAD_TIMEOUT=4\n"), std::string::npos) << research;
    const std::string research_bf16 = environ_while_training("", "bf16", "research_bf16", true);
    EXPECT_NE(research_bf16, "exited");
    EXPECT_EQ(research_bf16.find("OMP_WAIT_POLICY"), std::string::npos) << research_bf16;
}

// Finch ablations (issue 10, the paper's Table 19): --ablate freezes exactly the data-dependent LoRAs at their
// official init (w1 = 0, so the token shift / decay are static), and every other matrix still trains.
TEST(CliTrain, AblationsFreezeExactlyTheDataDependentLoras) {
    const fs::path out = tmp_dir() / "ablate";
    Result r =
        run("train text -q --tokenizer byte --model init:2,64,6 --ablate dd-token-shift --ctx-len 16 --batch 2 "
            "--steps 3 --lr 1e-2 --warmup 0 --threads 1 --data " +
            corpus() + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto trained = aviary::read_checkpoint((out / "model.safetensors").string());
    const auto init = aviary::init_weights(aviary::init_config(2, 64, 6, 256), 42);  // --seed default 42
    for (const auto& nt : init) {
        const at::Tensor* t = aviary::find_tensor(trained, nt.name);
        ASSERT_NE(t, nullptr) << nt.name;
        const bool ablated =
            nt.name.find("time_maa_w1") != std::string::npos || nt.name.find("time_maa_w2") != std::string::npos;
        const bool same = at::equal(t->to(at::kFloat), nt.tensor);
        if (ablated) {
            EXPECT_TRUE(same) << nt.name << " must stay at its init";
            if (nt.name.find("time_maa_w1") != std::string::npos) {
                EXPECT_EQ(t->abs().max().item<float>(), 0.f);
            }
        } else if (nt.name.find("time_decay_w1") != std::string::npos ||
                   nt.name.find(".att.value.") != std::string::npos) {
            EXPECT_FALSE(same) << nt.name << " must still train";
        }
    }
    expect_one_error_line(run("train text -q --tokenizer byte --model init:2,64,5 --ablate dd-decay --steps 1 --data " +
                              corpus() + " --out " + (tmp_dir() / "ablate5").string()),
                          2, "Finch");
    expect_one_error_line(run("train text -q --tokenizer byte --model init:2,64,6 --ablate gate --steps 1 --data " +
                              corpus() + " --out " + (tmp_dir() / "ablate6").string()),
                          2, "unknown ablation");
}
