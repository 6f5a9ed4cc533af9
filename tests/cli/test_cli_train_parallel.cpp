// Command-line tests of data-parallel training (core/src/distributed.cpp, apps/cli/launch_workers.cpp) and the
// fine-tuning flags of `aviary train text` (--lora, --train-state): two Gloo processes on loopback with batch b
// give the losses of one process with batch 2b, both through `--nproc 2` and through a torchrun-style environment;
// a failing worker stops the group with an `error:` line; LoRA and state tuning export official checkpoints.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli_run.h"

namespace fs = std::filesystem;

namespace {

using aviary::test::CliResult;

fs::path tmp_dir() {
    static const fs::path dir = aviary::test::scratch_dir("cli_parallel_test");
    return dir;
}

CliResult run(const std::string& args) {
    return aviary::test::run_cli(args, "", tmp_dir());
}

std::string corpus() {
    return aviary::test::tiny_corpus(tmp_dir());
}

// fp32: N ranks with batch b equal one process with batch N·b only in exact arithmetic (bf16 rounds each rank's
// weight gradients on their own).
const std::string kArgs =
    " --tokenizer byte --model init:2,64,6 --ctx-len 32 --lr 3e-3 --lr-final 1e-3 --warmup 2"
    " --threads 1 -q --steps 5 --precision fp32";

std::vector<double> losses_of(const fs::path& out) {
    std::vector<double> v;
    std::ifstream f(out / "train_log.jsonl");
    std::string line;
    while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return v;
}

void expect_same_losses(const std::vector<double>& a, const std::vector<double>& b) {
    ASSERT_EQ(a.size(), 5u);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * std::abs(b[i])) << "step " << i + 1;
}

// A listening loopback socket: its port is taken (rank 0 cannot serve the store there) and a client that
// connects gets no answer.
struct BusyPort {
    int fd = -1, port = 0;
    BusyPort() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(fd, 8);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~BusyPort() { ::close(fd); }
};

int free_port() {
    BusyPort p;
    return p.port;  // closed again on return
}

const std::vector<double>& single_process_losses() {
    static const std::vector<double> losses = [] {
        const fs::path out = tmp_dir() / "single";
        CliResult r = run("train text --data " + corpus() + kArgs + " --batch 4 --out " + out.string());
        EXPECT_EQ(r.code, 0) << r.err;
        return losses_of(out);
    }();
    return losses;
}

}  // namespace

TEST(CliTrainParallel, NprocTwoEqualsOneProcessWithDoubleBatch) {
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path out = tmp_dir() / "nproc2";
    CliResult r = run("train text --data " + corpus() + kArgs + " --batch 2 --nproc 2 --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    // Rank 0 alone reports and writes.
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find("\"end_step\":5"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(out / "model.safetensors"));
    expect_same_losses(losses_of(out), single_process_losses());
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

TEST(CliTrainParallel, TorchrunStyleEnvironment) {
    const fs::path out = tmp_dir() / "env2";
    const std::string common =
        std::string(AVIARY_CLI_PATH) + " train text --data " + corpus() + kArgs + " --batch 2 --out " + out.string();
    const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port());
    const fs::path o0 = tmp_dir() / "rank0.out", o1 = tmp_dir() / "rank1.out";
    const std::string cmd = "(" + env + " RANK=0 LOCAL_RANK=0 " + common + " >" + o0.string() + " 2>&1 & " + env +
                            " RANK=1 LOCAL_RANK=1 " + common + " >" + o1.string() + " 2>&1; s1=$?; wait $!; s0=$?;" +
                            " exit $((s0 + s1)))";
    const int status = std::system(("bash -c '" + cmd + "'").c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << aviary::test::slurp(o0) << "\n---\n"
                                                               << aviary::test::slurp(o1);
    EXPECT_NE(aviary::test::slurp(o0).find("\"end_step\":5"), std::string::npos);
    EXPECT_EQ(aviary::test::slurp(o1).find("end_step"), std::string::npos) << "rank 1 must not report";
    expect_same_losses(losses_of(out), single_process_losses());
}

TEST(CliTrainParallel, FailingWorkerStopsTheGroup) {
    BusyPort busy;  // rank 0 cannot serve the rendezvous store; rank 1 would wait for it
    const auto t0 = std::chrono::steady_clock::now();
    // run_cli has no environment argument; MASTER_PORT goes through this process's environment.
    ::setenv("MASTER_PORT", std::to_string(busy.port).c_str(), 1);
    CliResult r =
        run("train text --data " + corpus() + kArgs + " --batch 2 --nproc 2 --out " + (tmp_dir() / "fail2").string());
    ::unsetenv("MASTER_PORT");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_FALSE(r.signaled);
    // The launcher's own last line names the failed worker.
    std::string last;
    std::istringstream lines(r.err);
    for (std::string l; std::getline(lines, l);)
        if (!l.empty()) last = l;
    EXPECT_EQ(last.rfind("error: worker rank 0 of 2", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

TEST(CliTrainParallel, NprocUnderTorchrunIsAUsageError) {
    ::setenv("WORLD_SIZE", "2", 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    CliResult r =
        run("train text --data " + corpus() + kArgs + " --batch 2 --nproc 2 --out " + (tmp_dir() / "nested").string());
    ::unsetenv("WORLD_SIZE");
    ::unsetenv("MASTER_ADDR");
    aviary::test::expect_one_error_line(r, 2, "--nproc starts its own workers");
}

TEST(CliTrainFinetune, LoraExportsMergedOfficialWeights) {
    const fs::path base = tmp_dir() / "base", out = tmp_dir() / "lora";
    ASSERT_EQ(run("train text --data " + corpus() + kArgs + " --batch 2 --out " + base.string()).code, 0);
    CliResult r =
        run("train text --data " + corpus() + " --tokenizer byte --model " + (base / "model.safetensors").string() +
            " --ctx-len 32 --batch 2 --steps 4 --lr 1e-2 --warmup 0 --threads 1 -q"
            " --lora 4:8:att.*,ffn.key --out " +
            out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out / "lora.safetensors"));
    CliResult info = run("info --model " + (out / "model.safetensors").string());
    ASSERT_EQ(info.code, 0) << info.err;  // official keys only: loads as a plain model
    CliResult bad = run("train text --data " + corpus() + kArgs + " --batch 2 --lora 4:x --out " +
                        (tmp_dir() / "badlora").string());
    aviary::test::expect_one_error_line(bad, 2, "RANK[:ALPHA][:PATTERNS]");
    CliResult none = run("train text --data " + corpus() + kArgs + " --batch 2 --lora 4:8:att.nothing --out " +
                         (tmp_dir() / "nolora").string());
    aviary::test::expect_one_error_line(none, 1, "'att.nothing' matches no matrix");
}

TEST(CliTrainFinetune, StateTuningSavesOfficialTimeState) {
    const fs::path base = tmp_dir() / "base_s", out = tmp_dir() / "state";
    ASSERT_EQ(run("train text --data " + corpus() + kArgs + " --batch 2 --out " + base.string()).code, 0);
    CliResult r =
        run("train text --data " + corpus() + " --tokenizer byte --model " + (base / "model.safetensors").string() +
            " --ctx-len 32 --batch 2 --steps 4 --lr 1 --lr-final 0.01 --warmup 0 --threads 1 -q"
            " --train-state --out " +
            out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    CliResult info = run("info --model " + (out / "model.safetensors").string());
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_NE(info.out.find("\"has_time_state\":true"), std::string::npos) << info.out;
}
