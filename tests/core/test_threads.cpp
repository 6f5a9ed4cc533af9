// parallel_for_shares (core/src/threads.cpp): every index once, the shares on LibTorch's intra-op threads — one
// under set_thread_count(), which gives the cores to OpenBLAS, two inside TorchThreadsScope on two cores (the file is
// built with OpenMP: at::parallel_for, a header template, ran serially in files built without it) — and a share's
// exception rethrown to the caller.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
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
