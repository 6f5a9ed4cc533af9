// The CPU decode engine's worker pool (cpu_engine_pool.h). Chunks are claimed by compare-and-swap on a ticket that
// carries the job's generation, so a worker that wakes late can never take a chunk of a newer job by mistake; a
// successful claim also means the job is not finished, so job_ is still valid. Sequentially consistent atomics on
// generation_/sleeping_ make "announce, then wake sleepers" / "register as sleeper, then re-check" free of lost
// wake-ups.
#include "aviary/core/cpu_engine_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVIARY_CPU_RELAX() _mm_pause()
#else
#define AVIARY_CPU_RELAX() std::this_thread::yield()
#endif

namespace aviary::cpu {
namespace {
constexpr int kSpinsBeforeSleep = 1 << 15;  // ~100-300 microseconds of pause instructions
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    generation_.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.notify_all();
    }
    for (auto& t : threads_) t.join();
}

int ThreadPool::claim(uint32_t generation) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
        if (static_cast<uint32_t>(t >> 32) != generation) return -1;
        const int next = static_cast<int>(t & 0xffffffffu);
        if (next >= n_chunks_.load(std::memory_order_acquire)) return -1;
        if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) return next;
    }
}

void ThreadPool::run(int n_chunks, const std::function<void(int)>& job) {
    if (n_chunks <= 0) return;
    if (n_threads_ == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; ++c) job(c);
        return;
    }
    const uint32_t gen = generation_.load() + 1;
    // Close the previous job's ticket before describing the new job: a worker late from that job may have read its
    // ticket and then the new n_chunks_; its claim must fail rather than take a chunk of the new job before the new
    // ticket exists (that ran one chunk twice). The release store of n_chunks_ orders the close before it.
    ticket_.store((static_cast<uint64_t>(gen) << 32) | 0x7fffffffu);  // "all claimed"
    job_ = &job;
    n_chunks_.store(n_chunks, std::memory_order_release);
    done_.store(0, std::memory_order_relaxed);
    ticket_.store(static_cast<uint64_t>(gen) << 32);  // publishes job_, n_chunks_, done_ (seq_cst)
    generation_.store(gen);
    if (sleeping_.load() > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.notify_all();
    }
    for (int c; (c = claim(gen)) >= 0;) {
        job(c);
        done_.fetch_add(1, std::memory_order_release);
    }
    while (done_.load(std::memory_order_acquire) != n_chunks) AVIARY_CPU_RELAX();
}

void ThreadPool::worker() {
    uint32_t seen = 0;
    for (;;) {
        int spins = 0;
        while (generation_.load(std::memory_order_acquire) == seen) {
            if (++spins < kSpinsBeforeSleep) {
                AVIARY_CPU_RELAX();
                continue;
            }
            std::unique_lock<std::mutex> lock(mutex_);
            sleeping_.fetch_add(1);
            wake_.wait(lock, [&] { return generation_.load() != seen; });
            sleeping_.fetch_sub(1);
            spins = 0;
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load()) return;
        for (int c; (c = claim(seen)) >= 0;) {
            (*job_)(c);
            done_.fetch_add(1, std::memory_order_release);
        }
    }
}

}  // namespace aviary::cpu
