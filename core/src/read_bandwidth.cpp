// measure_read_bandwidth_gbps (cpu_engine.h): the decode floor's denominator. A streaming read must be at least as
// fast as any decode that reads the same bytes, so it uses what the fastest kernels use: the widest vector loads
// (AVX-512 where present, chosen at run time by cpuid, never by CPU model), eight independent accumulators per
// thread, a buffer several times the last-level cache (so no pass is served from it), every thread of the engine.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_pool.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"

namespace aviary {
namespace {

using V16 = float __attribute__((vector_size(16)));
using V32 = float __attribute__((vector_size(32)));
using V64 = float __attribute__((vector_size(64)));

// Σ of n floats (n a multiple of 128), eight accumulators of vectors V.
template <class V>
inline __attribute__((always_inline)) float sum_generic(const float* p, int64_t n) {
    constexpr int L = sizeof(V) / 4;
    V acc[8] = {};
    for (int64_t i = 0; i < n; i += 8 * L)
        for (int j = 0; j < 8; ++j) {
            V v;
            std::memcpy(&v, p + i + j * L, sizeof v);
            acc[j] += v;
        }
    V t = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    float s = 0;
    for (int j = 0; j < L; ++j) s += t[j];
    return s;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float sum_avx512(const float* p, int64_t n) {
    return sum_generic<V64>(p, n);
}
__attribute__((target("avx2"))) float sum_avx2(const float* p, int64_t n) {
    return sum_generic<V32>(p, n);
}
#endif

using SumFn = float (*)(const float*, int64_t);
SumFn best_sum() {
#if defined(__x86_64__)
    if (cpu_info().avx512) return &sum_avx512;
    if (cpu_info().avx2) return &sum_avx2;
#endif
    return [](const float* p, int64_t n) { return sum_generic<V16>(p, n); };
}

}  // namespace

double measure_read_bandwidth_gbps(int threads) {
    cpu::ThreadPool pool(threads > 0 ? threads : thread_count());
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0) llc = 64L << 20;
    const int64_t bytes = std::clamp<int64_t>(4 * int64_t(llc), int64_t(1) << 30, int64_t(4) << 30);
    const int64_t block = 128;  // floats per unit of work (the kernel's step)
    const int64_t n = bytes / 4 / block * block;
    float* buf = static_cast<float*>(std::aligned_alloc(64, size_t(n) * 4));
    AVIARY_CHECK(buf, "bandwidth probe: could not allocate ", bytes >> 20, " MiB");
    const int chunks = pool.size() * 8;
    auto range = [&](int c, int64_t& lo, int64_t& hi) {
        lo = n / block * c / chunks * block;
        hi = n / block * (c + 1) / chunks * block;
    };
    pool.run(chunks, [&](int c) {  // first touch by the threads that read it
        int64_t lo, hi;
        range(c, lo, hi);
        std::fill(buf + lo, buf + hi, 1.0f);
    });
    const SumFn sum = best_sum();
    std::vector<double> sums(size_t(chunks), 0.0);
    double best = 0;
    for (int pass = 0; pass < 7; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.run(chunks, [&](int c) {
            int64_t lo, hi;
            range(c, lo, hi);
            sums[size_t(c)] = sum(buf + lo, hi - lo);
        });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (pass > 0) best = std::max(best, n * 4.0 / s / 1e9);  // pass 0 warms the pool and the TLB
    }
    std::free(buf);
    double total = 0;
    for (double v : sums) total += v;
    AVIARY_CHECK(total == double(n), "internal: bandwidth probe summed ", total, " instead of ", n);
    return best;
}

}  // namespace aviary
