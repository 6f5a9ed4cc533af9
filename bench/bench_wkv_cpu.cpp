// aviary-bench-wkv-cpu: forward + backward time of the CPU WKV paths (fused loops, chunked matrix form, per-token
// reference) on random RWKV-6-like inputs. Usage: aviary-bench-wkv-cpu [B T H N [reps [threads]]] (default 32 105 1 64,
// a vision training batch of the shipped demo: 40 text tokens + 65 image rows; 3 repetitions; 1 intra-op thread).
// AVIARY_WKV_CPU_VERSION=name runs the fused loops in one of their versions (aviary::wkv_cpu_versions()).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "aviary/core/blas_core.h"
#include "aviary/core/threads.h"
#include "aviary/core/wkv.h"

int main(int argc, char** argv) {
    aviary::ensure_blas_core(argv);  // before any GEMM: OpenBLAS's kernels for this CPU (blas_core.h)
    const int64_t B = argc > 1 ? std::atoll(argv[1]) : 32, T = argc > 2 ? std::atoll(argv[2]) : 105;
    const int64_t H = argc > 3 ? std::atoll(argv[3]) : 1, N = argc > 4 ? std::atoll(argv[4]) : 64;
    const int reps = argc > 5 ? std::atoi(argv[5]) : 3, threads = argc > 6 ? std::atoi(argv[6]) : 1;
    if (B < 1 || T < 1 || H < 1 || N < 1 || reps < 1 || threads < 1) {
        std::fprintf(stderr, "error: usage: aviary-bench-wkv-cpu [B T H N [reps [threads]]] with positive numbers\n");
        return 2;
    }
    at::set_num_threads(threads);
    try {
        if (const char* v = std::getenv("AVIARY_WKV_CPU_VERSION")) aviary::set_wkv_cpu_version(v);
        (void)aviary::wkv_cpu_version_for(N);  // a forced version must suit this head size
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    torch::manual_seed(0);
    auto mk = [&] { return torch::randn({B, T, H, N}).requires_grad_(); };
    at::Tensor r = mk(), k = mk(), v = mk();
    at::Tensor lw = (-torch::rand({B, T, H, N}) * 0.5 - 0.01).requires_grad_();
    at::Tensor u = torch::randn({H, N}).requires_grad_(), s0 = torch::zeros({B, H, N, N});
    std::printf(
        "WKV fwd+bwd, B=%lld T=%lld H=%lld N=%lld, %d thread(s) (fused loops: version %s, %d thread(s)), best "
        "of %d\n",
        (long long)B, (long long)T, (long long)H, (long long)N, threads, aviary::wkv_cpu_version_for(N).c_str(),
        aviary::parallel_for_shares(B * H, [](int64_t, int64_t) {}), reps);
    struct Path {
        const char* name;
        aviary::WkvImpl impl;
        int64_t chunk;
    };
    for (const Path& p :
         {Path{"cpu (fused loops)", aviary::WkvImpl::Cpu, 0}, Path{"chunked, chunk 16", aviary::WkvImpl::Chunked, 16},
          Path{"chunked, chunk 32 (the old CPU default)", aviary::WkvImpl::Chunked, 32},
          Path{"reference (per token)", aviary::WkvImpl::Reference, 0}}) {
        double best = 1e30;
        for (int i = 0; i < reps; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            auto [y, s] = aviary::wkv(r, k, v, lw, u, s0, p.impl, p.chunk > 0 ? p.chunk : 32);
            (y.sum() + s.sum()).backward();
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("  %-40s %9.2f ms  %10.0f tokens/s\n", p.name, best * 1e3, double(B * T) / best);
    }
    return 0;
}
