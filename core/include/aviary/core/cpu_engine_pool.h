// A persistent worker pool for the CPU decode engine (cpu_engine.h). A job is a number of chunks; the caller and the
// workers claim chunks from one atomic ticket, so when a worker is descheduled (a 2-core machine shared with other
// processes) the caller simply does its chunks instead of waiting at a barrier; the caller only waits for chunks
// already claimed. A decode step runs ~10 jobs per layer, so workers spin briefly between jobs (a futex wake costs
// tens of microseconds) and then sleep on a condition variable so an idle engine costs no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aviary::cpu {

class ThreadPool {
public:
    // n_threads >= 1 (the caller counts as one; n_threads - 1 workers are started).
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // Runs job(chunk) for every chunk in [0, n_chunks) on whichever threads claim them, and returns when all are
    // done. Not reentrant (one job at a time).
    void run(int n_chunks, const std::function<void(int)>& job);

private:
    void worker();
    // Claims the next chunk of job `generation`; -1 when that job has none left (or is over).
    int claim(uint32_t generation);

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int)>* job_ = nullptr;
    std::atomic<int> n_chunks_{0};
    std::atomic<uint32_t> generation_{0};
    std::atomic<uint64_t> ticket_{0};  // (generation << 32) | next chunk
    std::atomic<int> done_{0};
    std::atomic<int> sleeping_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
};

}  // namespace aviary::cpu
