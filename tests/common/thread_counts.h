// Test helper for "the same bits on any thread count" checks of the CPU ops split by parallel_for_shares: run() once
// on one thread (set_thread_count(1)) and once with LibTorch's OpenMP threads widened to every core
// (TorchThreadsScope, as a bf16 training step runs); both results returned, the previous thread counts restored.
#pragma once
#include <ATen/Parallel.h>

#include <utility>

#include "aviary/core/threads.h"

namespace aviary::test {

template <class Fn>
auto on_one_thread_and_all(Fn&& run) {
    const int intra_before = at::get_num_threads(), blas_before = aviary::thread_count();
    aviary::set_thread_count(1);
    auto one = run();
    decltype(one) all;
    {
        aviary::TorchThreadsScope widened;
        all = run();
    }
    aviary::set_thread_count(blas_before);
    at::set_num_threads(intra_before);
    return std::make_pair(std::move(one), std::move(all));
}

}  // namespace aviary::test
