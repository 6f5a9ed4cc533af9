// measure_read_bandwidth_gbps (cpu_engine.h): the decode floor's denominator. A streaming read must be at least as
// fast as any decode that reads the same bytes, so it uses what the fastest kernels use: the widest vector loads
// (AVX-512 where present, chosen at run time by cpuid, never by CPU model), eight independent accumulators per
// thread, every thread of the engine; over a buffer several times the last-level cache (DRAM), or over a working set
// the size of what one decode step reads (which a large last-level cache may partly hold: 300 MiB on the Emerald
// Rapids VMs, more than a 0.1B model's bf16 or int8 weights).
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
#include "aviary/core/huge_pages.h"
#include "aviary/core/threads.h"

namespace aviary {
namespace {

using V16 = float __attribute__((vector_size(16)));
using V32 = float __attribute__((vector_size(32)));
using V64 = float __attribute__((vector_size(64)));

// Σ of n floats (n a multiple of kBlock), read as kStreams interleaved sequential streams, as the decode kernels
// read 4 weight rows at a time (several streams keep more cache-line fills in flight than one), with eight
// accumulators of vectors V (kStreams × kUnroll vectors per step).
constexpr int kStreams = 4, kUnroll = 2;
constexpr int64_t kBlock = 128 * kStreams;
template <class V>
inline __attribute__((always_inline)) float sum_generic(const float* p, int64_t n) {
    constexpr int L = sizeof(V) / 4;
    const int64_t per = n / kStreams;
    V acc[kStreams * kUnroll] = {};
    for (int64_t i = 0; i < per; i += kUnroll * L)
        for (int s = 0; s < kStreams; ++s)
            for (int u = 0; u < kUnroll; ++u) {
                V v;
                std::memcpy(&v, p + s * per + i + u * L, sizeof v);
                acc[s * kUnroll + u] += v;
            }
    V t = acc[0];
    for (int j = 1; j < kStreams * kUnroll; ++j) t += acc[j];
    float sum = 0;
    for (int j = 0; j < L; ++j) sum += t[j];
    return sum;
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

double measure_read_bandwidth_gbps(int threads, double working_set_bytes) {
    cpu::ThreadPool pool(threads > 0 ? threads : thread_count());
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0) llc = 64L << 20;
    const int64_t bytes = working_set_bytes > 0
                              ? std::clamp<int64_t>(int64_t(working_set_bytes), int64_t(1) << 20, int64_t(16) << 30)
                              : std::clamp<int64_t>(4 * int64_t(llc), int64_t(1) << 30, int64_t(4) << 30);
    const int64_t block = kBlock;  // floats per unit of work (the kernel's step)
    const int64_t n = bytes / 4 / block * block;
    // On huge pages, as the engine's weights are (huge_pages.h): a probe on 4 KiB pages read 5–15 % slower here than
    // the same stream on 2 MiB pages, so an engine could have beaten its floor.
    const cpu::HugeBuffer memory = cpu::alloc_huge(size_t(n) * 4);
    float* buf = static_cast<float*>(memory.get());
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
    const int passes = bytes < (int64_t(256) << 20) ? 25 : 9;  // small sets: more, shorter passes
    for (int pass = 0; pass < passes; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.run(chunks, [&](int c) {
            int64_t lo, hi;
            range(c, lo, hi);
            sums[size_t(c)] = sum(buf + lo, hi - lo);
        });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (pass > 0) best = std::max(best, n * 4.0 / s / 1e9);  // pass 0 warms the pool and the TLB
    }
    double total = 0;
    for (double v : sums) total += v;
    AVIARY_CHECK(total == double(n), "internal: bandwidth probe summed ", total, " instead of ", n);
    return best;
}

}  // namespace aviary
