// parallel_for_shares (core/src/threads.cpp): every index once, the shares on LibTorch's intra-op threads — one
// under set_thread_count(), which gives the cores to OpenBLAS, two inside TorchThreadsScope on two cores (the file is
// built with OpenMP: at::parallel_for, a header template, ran serially in files built without it) — and a share's
// exception rethrown to the caller; inside SharesBesideBlasScope (fp32 training with sleeping idle workers) the shares
// on thread_count() threads of its own while LibTorch keeps one; and thread_pools_sleep_when_idle() from the
// environment.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/threads.h"

TEST(ParallelForShares, CoversEveryIndexOnceOnTheIntraOpThreads) {
    const int intra_before = at::get_num_threads(), blas_before = aviary::thread_count();
    auto check = [](int64_t n, const char* setting) {
        std::vector<std::atomic<int>> hits(n);
        const int shares = aviary::parallel_for_shares(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << setting << " index " << i;
        return shares;
    };
    aviary::set_thread_count(2);  // OpenBLAS 2, LibTorch 1
    EXPECT_EQ(check(37, "set_thread_count(2)"), 1);
    {
        aviary::TorchThreadsScope all;  // LibTorch thread_count(), OpenBLAS 1
        const int shares = check(37, "TorchThreadsScope");
#if defined(__GNUC__) && !defined(__clang__)  // GCC builds compile threads.cpp with OpenMP (core/CMakeLists.txt)
        if (std::thread::hardware_concurrency() >= 2 && at::get_num_threads() == 2) {
            EXPECT_EQ(shares, 2);
        }
#endif
        EXPECT_EQ(check(1, "one item"), 1);
    }
    EXPECT_EQ(aviary::parallel_for_shares(0, [](int64_t, int64_t) { FAIL() << "called for an empty range"; }), 0);
    aviary::set_thread_count(blas_before);
    at::set_num_threads(intra_before);
}

TEST(ParallelForShares, RethrowsAShareException) {
    aviary::TorchThreadsScope all;
    EXPECT_THROW(
        aviary::parallel_for_shares(8, [](int64_t b, int64_t) { AVIARY_CHECK(b != 0, "the first share fails"); }),
        aviary::Error);
}

TEST(ParallelForShares, BesideBlasSplitsOverTheBlasThreadCountWhileLibTorchKeepsOne) {
    const int intra_before = at::get_num_threads(), blas_before = aviary::thread_count();
    aviary::set_thread_count(2);  // OpenBLAS 2, LibTorch 1
    {
        aviary::SharesBesideBlasScope beside;
        EXPECT_EQ(at::get_num_threads(), 1);
        std::vector<std::atomic<int>> hits(37);
        const int shares = aviary::parallel_for_shares(37, [&](int64_t b, int64_t e) {
            EXPECT_EQ(at::get_num_threads(), 1);
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < 37; ++i) EXPECT_EQ(hits[i].load(), 1) << "index " << i;
#if defined(__GNUC__) && !defined(__clang__)
        if (std::thread::hardware_concurrency() >= 2) {
            EXPECT_EQ(shares, 2);
        }
#endif
        EXPECT_EQ(aviary::parallel_for_shares(1, [](int64_t b, int64_t e) { EXPECT_EQ(e - b, 1); }), 1);
        EXPECT_THROW(
            aviary::parallel_for_shares(8, [](int64_t b, int64_t) { AVIARY_CHECK(b != 0, "the first share fails"); }),
            aviary::Error);
    }
    // after the scope: LibTorch's one thread again
    EXPECT_EQ(aviary::parallel_for_shares(37, [](int64_t, int64_t) {}), 1);
    aviary::set_thread_count(blas_before);
    at::set_num_threads(intra_before);
}

// The ids of this process's threads (/proc/self/task).
std::set<std::string> thread_ids() {
    std::set<std::string> ids;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
        ids.insert(entry.path().filename().string());
    return ids;
}

// A training step opens the scope once: it must not start a thread each time (at::set_num_threads rebuilt
// LibTorch's pthreadpool at every call, and the new pool's worker spun on a core the step needed).
TEST(TorchThreadsScope, StartsNoThreadOnEachEntry) {
    const int intra_before = at::get_num_threads(), blas_before = aviary::thread_count();
    aviary::set_thread_count(2);  // OpenBLAS 2, LibTorch 1: the scope widens LibTorch to 2 whatever the cores
    // one step: returns the threads alive inside the scope, while its work runs
    auto run_a_step = [] {
        aviary::TorchThreadsScope all;
        EXPECT_EQ(at::get_num_threads(), 2);
        EXPECT_GE(aviary::parallel_for_shares(64, [](int64_t, int64_t) {}), 1);
        return thread_ids();
    };
    const std::set<std::string> first = run_a_step();  // the pools' threads start here, once
    for (int i = 0; i < 4; ++i) EXPECT_EQ(run_a_step(), first) << "entry " << i + 2 << " ran on other threads";
    EXPECT_EQ(at::get_num_threads(), 1);
    aviary::set_thread_count(blas_before);
    at::set_num_threads(intra_before);
}

TEST(ThreadPools, SleepWhenIdleOnlyWithBothSettings) {
    auto restore = [](const char* name, const char* value) {
        if (value)
            setenv(name, value, 1);
        else
            unsetenv(name);
    };
    const char* omp = std::getenv("OMP_WAIT_POLICY");
    const char* blas = std::getenv("OPENBLAS_THREAD_TIMEOUT");
    const std::string omp_saved = omp ? omp : "", blas_saved = blas ? blas : "";
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);  // the value is case-insensitive, as libgomp reads it
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    EXPECT_TRUE(aviary::thread_pools_sleep_when_idle());
    unsetenv("OPENBLAS_THREAD_TIMEOUT");
    EXPECT_FALSE(aviary::thread_pools_sleep_when_idle());
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    setenv("OMP_WAIT_POLICY", "active", 1);
    EXPECT_FALSE(aviary::thread_pools_sleep_when_idle());
    restore("OMP_WAIT_POLICY", omp ? omp_saved.c_str() : nullptr);
    restore("OPENBLAS_THREAD_TIMEOUT", blas ? blas_saved.c_str() : nullptr);
}
