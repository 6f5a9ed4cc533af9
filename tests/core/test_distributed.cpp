// Rendezvous environment of core/src/distributed.cpp (torchrun, Slurm, torchrun's agent store) and the build's
// c10d backends. The collectives themselves run in tests/cli/test_cli_train_parallel.cpp, with real processes.
#include <gtest/gtest.h>

#include "common/error_of.h"

#include <cstdlib>
#include <functional>
#include <vector>
#include <string>

#include "aviary/core/distributed.h"
#include "aviary/core/error.h"

using namespace aviary;

namespace {

const char* kVars[] = {"WORLD_SIZE",
                       "RANK",
                       "LOCAL_RANK",
                       "MASTER_ADDR",
                       "MASTER_PORT",
                       "SLURM_NTASKS",
                       "SLURM_PROCID",
                       "SLURM_LOCALID",
                       "TORCHELASTIC_USE_AGENT_STORE",
                       "TORCHELASTIC_RESTART_COUNT"};

// Clears the rendezvous variables for the test and restores them afterwards.
struct CleanEnv {
    std::vector<std::pair<std::string, std::string>> saved;
    CleanEnv() {
        for (const char* v : kVars) {
            if (const char* x = std::getenv(v)) saved.emplace_back(v, x);
            ::unsetenv(v);
        }
    }
    ~CleanEnv() {
        for (const char* v : kVars) ::unsetenv(v);
        for (auto& [k, v] : saved) ::setenv(k.c_str(), v.c_str(), 1);
    }
};

using aviary::test::error_of;

}  // namespace

TEST(Distributed, SingleProcessWithoutEnvironment) {
    CleanEnv clean;
    DistributedEnv e = distributed_env_from_environment();
    EXPECT_FALSE(e.active());
    EXPECT_EQ(e.rank, 0);
    EXPECT_EQ(e.world_size, 1);
}

TEST(Distributed, TorchrunVariables) {
    CleanEnv clean;
    ::setenv("WORLD_SIZE", "4", 1);
    ::setenv("RANK", "3", 1);
    ::setenv("LOCAL_RANK", "1", 1);
    ::setenv("MASTER_ADDR", "node7", 1);
    ::setenv("MASTER_PORT", "29611", 1);
    ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
    ::setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
    DistributedEnv e = distributed_env_from_environment();
    EXPECT_TRUE(e.active());
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.master_addr, "node7");
    EXPECT_EQ(e.master_port, 29611);
    EXPECT_TRUE(e.agent_store);
    EXPECT_EQ(e.restart_count, 2);
}

TEST(Distributed, SlurmVariablesWhenRankIsAbsent) {
    CleanEnv clean;
    ::setenv("SLURM_NTASKS", "2", 1);
    ::setenv("SLURM_PROCID", "1", 1);
    ::setenv("SLURM_LOCALID", "0", 1);
    ::setenv("MASTER_ADDR", "10.0.0.1", 1);
    DistributedEnv e = distributed_env_from_environment();
    EXPECT_EQ(e.world_size, 2);
    EXPECT_EQ(e.rank, 1);
    EXPECT_EQ(e.local_rank, 0);
    EXPECT_EQ(e.master_port, 29500);
    EXPECT_FALSE(e.agent_store);
}

TEST(Distributed, BadEnvironmentIsAClearError) {
    CleanEnv clean;
    ::setenv("WORLD_SIZE", "2", 1);
    ::setenv("RANK", "2", 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("RANK 2 is not below WORLD_SIZE 2"),
              std::string::npos);
    ::setenv("RANK", "0", 1);
    ::setenv("MASTER_PORT", "http", 1);
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_PORT='http'"), std::string::npos);
    ::unsetenv("MASTER_PORT");
    ::unsetenv("MASTER_ADDR");
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_ADDR is not set"), std::string::npos);
}

TEST(Distributed, BackendsOfThisBuild) {
    EXPECT_FALSE(distributed_backend_available("mpi"));
    DistributedEnv single;  // world size 1: every collective is the identity, no rendezvous
    if (!distributed_backend_available("gloo")) GTEST_SKIP() << "built without the gloo headers (libgloo-dev)";
    auto c = Communicator::connect(single, "gloo");
    EXPECT_EQ(c->world_size(), 1);
    EXPECT_TRUE(c->any(true));
    EXPECT_FALSE(c->any(false));
    EXPECT_NE(error_of([&] { Communicator::connect(single, "mpi"); }).find("unknown distributed backend"),
              std::string::npos);
}
