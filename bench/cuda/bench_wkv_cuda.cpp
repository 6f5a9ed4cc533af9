// aviary-bench-wkv-cuda: cudaEvent timings of the CUDA WKV kernels (kernels/src/wkv_*.cu), the autograd op
// (aviary::wkv_cuda) and, for comparison, the pure-LibTorch chunked form (aviary::wkv_chunked, spec §2.5.3) on the GPU.
// Prints achieved GB/s and TFLOP/s against H100 SXM limits and writes all records as JSON (argv[1]).
// Shapes follow the official training setting (spec §4.1): B=8, T=1024, N=64.
// `--paper out.json`: the Eagle/Finch paper's setting instead (§9: batch 8, D = 4096 = 64 heads of 64, bf16 inputs,
// T = 1k…16k): op forward and forward+backward time and peak memory, against floors from a measured device copy
// bandwidth and a measured bf16 matmul rate (bench/cuda/bench_attention_peers.py times SDPA and FLA alike).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <torch/torch.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "aviary/core/wkv.h"
#include "aviary/kernels/wkv.cuh"

namespace {

// H100 SXM5 data-sheet limits: HBM3 bandwidth and non-tensor-core fp32 throughput.
constexpr double kPeakBytesPerSec = 3.35e12;
constexpr double kPeakFp32FlopsPerSec = 67e12;

struct Record {
    std::string name, dtype;
    int B, T, H, N;
    double ms, bytes, flops;
};

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Mean milliseconds per call of f over `iters` calls after `warmup` calls, measured with cudaEvents on `stream`.
double time_ms(const std::function<void()>& f, cudaStream_t stream, int warmup = 3, int iters = 20) {
    for (int i = 0; i < warmup; ++i) f();
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int i = 0; i < iters; ++i) f();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / iters;
}

std::vector<Record> g_records;

void report(const Record& rec) {
    const double sec = rec.ms * 1e-3;
    const double gbs = rec.bytes / sec * 1e-9, tflops = rec.flops / sec * 1e-12;
    std::printf(
        "%-28s %-5s B=%-2d T=%-5d H=%-3d N=%-3d %10.4f ms %9.1f GB/s (%5.1f%% HBM) "
        "%7.3f TFLOP/s (%5.2f%% fp32)\n",
        rec.name.c_str(), rec.dtype.c_str(), rec.B, rec.T, rec.H, rec.N, rec.ms, gbs,
        100.0 * rec.bytes / sec / kPeakBytesPerSec, tflops, 100.0 * rec.flops / sec / kPeakFp32FlopsPerSec);
    std::fflush(stdout);
    g_records.push_back(rec);
}

template <typename In>
const In* ptr_as(const at::Tensor& t) {
    return static_cast<const In*>(t.data_ptr());
}

// Sequence kernels and op for one shape and input dtype.
template <typename In>
void bench_sequence(at::ScalarType dtype, const char* dname, int B, int T, int H, int N, bool with_chunked) {
    const auto cuda = torch::TensorOptions().device(torch::kCUDA);
    const auto f32 = cuda.dtype(torch::kFloat);
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
    torch::manual_seed(0);
    const at::Tensor r = (torch::randn({B, T, H, N}, f32) * 0.5).to(dtype);  // (B, T, H, N)
    const at::Tensor k = (torch::randn({B, T, H, N}, f32) * 0.5).to(dtype);
    const at::Tensor v = torch::randn({B, T, H, N}, f32).to(dtype);
    const at::Tensor lw = -torch::exp(torch::randn({B, T, H, N}, f32) * 0.5 - 0.5);  // log decay ≤ 0
    const at::Tensor u = torch::randn({H, N}, f32) * 0.5;                            // (H, N)
    const at::Tensor s0 = torch::randn({B, H, N, N}, f32) * 0.3;                     // (B, H, N, N)
    const at::Tensor gy = torch::randn({B, T, H, N}, f32), gs = torch::randn({B, H, N, N}, f32);
    at::Tensor y = torch::empty({B, T, H, N}, f32), s = torch::empty({B, H, N, N}, f32);
    at::Tensor gr = torch::empty_like(y), gk = torch::empty_like(y), gv = torch::empty_like(y);
    at::Tensor glw = torch::empty_like(y), gu = torch::empty({B, H, N}, f32), gs0 = torch::empty_like(s);

    const double elems = double(B) * T * H * N, states = double(B) * H * N * N, e = r.element_size();
    // Forward: r, k, v (e bytes), lw and y (4 bytes) per element; state in and out. ≈7 flops per (t, j, i).
    const double fwd_bytes = elems * (3 * e + 8) + 2 * states * 4, fwd_flops = 7.0 * elems * N;
    // Backward (3 kernels): 8 input reads of e bytes, 12 fp32 reads/writes per element; 5 state passes.
    const double bwd_bytes = elems * (8 * e + 48) + 5 * states * 4, bwd_flops = 20.0 * elems * N;

    auto forward = [&] {
        check(aviary::kernels::wkv_forward<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                               u.data_ptr<float>(), s0.data_ptr<float>(), y.data_ptr<float>(),
                                               s.data_ptr<float>(), B, T, H, N, stream),
              "wkv_forward");
    };
    auto backward = [&] {
        check(aviary::kernels::wkv_backward<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                                u.data_ptr<float>(), s0.data_ptr<float>(), s.data_ptr<float>(),
                                                gy.data_ptr<float>(), gs.data_ptr<float>(), gr.data_ptr<float>(),
                                                gk.data_ptr<float>(), gv.data_ptr<float>(), glw.data_ptr<float>(),
                                                gu.data_ptr<float>(), gs0.data_ptr<float>(), B, T, H, N, stream),
              "wkv_backward");
    };
    report({"kernel forward", dname, B, T, H, N, time_ms(forward, stream), fwd_bytes, fwd_flops});
    forward();
    report({"kernel backward", dname, B, T, H, N, time_ms(backward, stream), bwd_bytes, bwd_flops});
    report({"kernel forward+backward", dname, B, T, H, N,
            time_ms(
                [&] {
                    forward();
                    backward();
                },
                stream),
            fwd_bytes + bwd_bytes, fwd_flops + bwd_flops});

    // The same sequence through autograd (includes the op's casts, the lw expand and the gradient reductions).
    using WkvFn = std::pair<at::Tensor, at::Tensor> (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                        const at::Tensor&, const at::Tensor&, const at::Tensor&);
    auto op_pair = [&](const std::string& label, WkvFn fn) {
        auto op_forward = [&] {
            torch::NoGradGuard no_grad;
            fn(r, k, v, lw, u, s0);
        };
        auto op_forward_backward = [&] {
            at::Tensor rq = r.detach().requires_grad_(true), kq = k.detach().requires_grad_(true);
            at::Tensor vq = v.detach().requires_grad_(true), lwq = lw.detach().requires_grad_(true);
            at::Tensor uq = u.detach().requires_grad_(true), sq = s0.detach().requires_grad_(true);
            auto out = fn(rq, kq, vq, lwq, uq, sq);
            torch::autograd::backward({out.first, out.second}, {gy, gs});
        };
        try {
            report({label + " forward", dname, B, T, H, N, time_ms(op_forward, stream, 2, 10), fwd_bytes, fwd_flops});
            report({label + " forward+backward", dname, B, T, H, N, time_ms(op_forward_backward, stream, 2, 10),
                    fwd_bytes + bwd_bytes, fwd_flops + bwd_flops});
        } catch (const std::exception& ex) {
            std::printf("%-28s %-5s skipped: %s\n", label.c_str(), dname, ex.what());
        }
    };
    op_pair("op wkv_cuda", &aviary::wkv_cuda);
    if (with_chunked) {
        // Pure-LibTorch chunked form (chunk 64) on the same GPU; byte/flop counts are those of the recurrence.
        op_pair("torch wkv_chunked(64)", [](const at::Tensor& r_, const at::Tensor& k_, const at::Tensor& v_,
                                            const at::Tensor& lw_, const at::Tensor& u_, const at::Tensor& s_) {
            return aviary::wkv_chunked(r_, k_, v_, lw_, u_, s_, 64);
        });
    }
}

template <typename In>
void bench_decode(at::ScalarType dtype, const char* dname, int B, int H, int N) {
    const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
    const at::Tensor r = (torch::randn({B, H, N}, f32) * 0.5).to(dtype);  // (B, H, N)
    const at::Tensor k = (torch::randn({B, H, N}, f32) * 0.5).to(dtype);
    const at::Tensor v = torch::randn({B, H, N}, f32).to(dtype);
    const at::Tensor lw = -torch::exp(torch::randn({B, H, N}, f32) * 0.5 - 0.5), u = torch::randn({H, N}, f32);
    at::Tensor state = torch::randn({B, H, N, N}, f32) * 0.3, y = torch::empty({B, H, N}, f32);
    const double bytes = double(B) * H * (2.0 * N * N * 4 + N * (3 * r.element_size() + 8));
    auto step = [&] {
        check(aviary::kernels::wkv_decode<In>(ptr_as<In>(r), ptr_as<In>(k), ptr_as<In>(v), lw.data_ptr<float>(),
                                              u.data_ptr<float>(), state.data_ptr<float>(), y.data_ptr<float>(), B, H,
                                              N, stream),
              "wkv_decode");
    };
    report({"kernel decode (1 step)", dname, B, 1, H, N, time_ms(step, stream, 10, 200), bytes, 7.0 * B * H * N * N});
}

void write_json(const std::string& path, const std::string& device) {
    std::ofstream out(path);
    out << "{\n  \"device\": \"" << device << "\",\n  \"peak_bytes_per_s\": " << kPeakBytesPerSec
        << ",\n  \"peak_fp32_flops_per_s\": " << kPeakFp32FlopsPerSec << ",\n  \"records\": [\n";
    for (size_t i = 0; i < g_records.size(); ++i) {
        const Record& r = g_records[i];
        const double sec = r.ms * 1e-3;
        out << "    {\"name\": \"" << r.name << "\", \"dtype\": \"" << r.dtype << "\", \"B\": " << r.B
            << ", \"T\": " << r.T << ", \"H\": " << r.H << ", \"N\": " << r.N << ", \"ms\": " << r.ms
            << ", \"GB_per_s\": " << r.bytes / sec * 1e-9 << ", \"TFLOP_per_s\": " << r.flops / sec * 1e-12 << "}"
            << (i + 1 < g_records.size() ? ",\n" : "\n");
    }
    out << "  ]\n}\n";
}

// ---- Paper setting (--paper) ----

// Device bandwidth in bytes/s: device-to-device copies of 1 GiB (2 bytes of traffic per byte copied), best of 10.
double measure_copy_bytes_per_s(cudaStream_t stream) {
    const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
    at::Tensor src = torch::ones({256LL << 20}, f32), dst = torch::empty_like(src);
    double best = 1e30;
    for (int i = 0; i < 10; ++i) best = std::min(best, time_ms([&] { dst.copy_(src); }, stream, i == 0 ? 1 : 0, 1));
    return 2.0 * src.numel() * 4 / (best * 1e-3);
}

// Dense bf16 matmul rate in FLOP/s: 8192³ products, best of several.
double measure_bf16_matmul_flops_per_s(cudaStream_t stream) {
    const auto bf16 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
    const int64_t n = 8192;
    at::Tensor a = torch::randn({n, n}, bf16), b = torch::randn({n, n}, bf16), c = torch::empty({n, n}, bf16);
    const double ms = time_ms([&] { at::matmul_out(c, a, b); }, stream, 3, 20);
    return 2.0 * n * n * n / (ms * 1e-3);
}

struct PaperRecord {
    int T;
    double fwd_ms, fwdbwd_ms, fwd_peak_gib, fwdbwd_peak_gib, fwd_bytes, bwd_bytes, fwd_flops, bwd_flops;
};

double peak_gib() {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);  // [0] = aggregate
}

// The autograd op (aviary::wkv_cuda) at B=8, H=64, N=64, bf16 r/k/v, fp32 log decay, no initial state (the
// training setting). Peak memory includes the inputs, as torch.cuda.max_memory_allocated does for the peers.
PaperRecord bench_paper(int T, cudaStream_t stream) {
    const int B = 8, H = 64, N = 64;
    const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
    c10::cuda::CUDACachingAllocator::emptyCache();
    torch::manual_seed(T);
    const at::Tensor r = (torch::randn({B, T, H, N}, f32) * 0.5).to(torch::kBFloat16);  // (B, T, H, N)
    const at::Tensor k = (torch::randn({B, T, H, N}, f32) * 0.5).to(torch::kBFloat16);
    const at::Tensor v = torch::randn({B, T, H, N}, f32).to(torch::kBFloat16);
    const at::Tensor lw = -torch::exp(torch::randn({B, T, H, N}, f32) * 0.5 - 0.5);  // (B, T, H, N) log decay
    const at::Tensor u = torch::randn({H, N}, f32) * 0.5;                            // (H, N)
    const at::Tensor gy = torch::randn({B, T, H, N}, f32);
    const double elems = double(B) * T * H * N, states = double(B) * H * N * N;
    PaperRecord rec{T};
    rec.fwd_bytes = elems * (3 * 2 + 8) + states * 4;
    rec.bwd_bytes = elems * (8 * 2 + 48) + 4 * states * 4;
    rec.fwd_flops = 7.0 * elems * N;
    rec.bwd_flops = 20.0 * elems * N;
    auto forward = [&] {
        torch::NoGradGuard no_grad;
        aviary::wkv_cuda(r, k, v, lw, u, at::Tensor());
    };
    auto forward_backward = [&] {
        at::Tensor rq = r.detach().requires_grad_(true), kq = k.detach().requires_grad_(true);
        at::Tensor vq = v.detach().requires_grad_(true), lwq = lw.detach().requires_grad_(true);
        at::Tensor uq = u.detach().requires_grad_(true);
        auto out = aviary::wkv_cuda(rq, kq, vq, lwq, uq, at::Tensor());
        out.first.backward(gy);
    };
    const int iters = T >= 8192 ? 2 : 4;
    rec.fwd_ms = time_ms(forward, stream, 1, iters);
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
    forward();
    check(cudaStreamSynchronize(stream), "sync");
    rec.fwd_peak_gib = peak_gib();
    rec.fwdbwd_ms = time_ms(forward_backward, stream, 1, iters);
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
    forward_backward();
    check(cudaStreamSynchronize(stream), "sync");
    rec.fwdbwd_peak_gib = peak_gib();
    return rec;
}

int run_paper(const std::string& json_path) {
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    const double bw = measure_copy_bytes_per_s(stream), mm = measure_bf16_matmul_flops_per_s(stream);
    std::printf("device: %s; measured copy bandwidth %.0f GB/s, bf16 matmul %.0f TFLOP/s\n", prop.name, bw * 1e-9,
                mm * 1e-12);
    std::ofstream out(json_path);
    out << "{\n  \"device\": \"" << prop.name << "\",\n  \"copy_bytes_per_s\": " << bw
        << ",\n  \"bf16_matmul_flops_per_s\": " << mm << ",\n  \"B\": 8, \"H\": 64, \"N\": 64, \"dtype\": \"bf16\",\n"
        << "  \"records\": [\n";
    std::printf(
        "| T | fwd ms | fwd+bwd ms | fwd peak GiB | fwd+bwd peak GiB | fwd floor fraction | fwd+bwd floor "
        "fraction |\n|---|---|---|---|---|---|---|\n");
    bool first = true;
    for (const int T : {1024, 2048, 4096, 8192, 16384}) {
        const PaperRecord r = bench_paper(T, stream);
        // Floor = the larger of bytes / bandwidth and FLOPs / matmul rate; fraction = floor time / measured time.
        const double fwd_floor_ms = std::max(r.fwd_bytes / bw, r.fwd_flops / mm) * 1e3;
        const double all_floor_ms = std::max((r.fwd_bytes + r.bwd_bytes) / bw, (r.fwd_flops + r.bwd_flops) / mm) * 1e3;
        std::printf("| %d | %.3f | %.3f | %.2f | %.2f | %.1f%% | %.1f%% |\n", T, r.fwd_ms, r.fwdbwd_ms, r.fwd_peak_gib,
                    r.fwdbwd_peak_gib, 100 * fwd_floor_ms / r.fwd_ms, 100 * all_floor_ms / r.fwdbwd_ms);
        std::fflush(stdout);
        out << (first ? "" : ",\n") << "    {\"T\": " << T << ", \"fwd_ms\": " << r.fwd_ms
            << ", \"fwdbwd_ms\": " << r.fwdbwd_ms << ", \"fwd_peak_gib\": " << r.fwd_peak_gib
            << ", \"fwdbwd_peak_gib\": " << r.fwdbwd_peak_gib << ", \"fwd_bytes\": " << r.fwd_bytes
            << ", \"bwd_bytes\": " << r.bwd_bytes << ", \"fwd_flops\": " << r.fwd_flops
            << ", \"bwd_flops\": " << r.bwd_flops << ", \"fwd_floor_ms\": " << fwd_floor_ms
            << ", \"fwdbwd_floor_ms\": " << all_floor_ms << "}";
        out.flush();
        first = false;
    }
    out << "\n  ]\n}\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--paper") {
        try {
            return run_paper(argc > 2 ? argv[2] : "bench_wkv_paper.json");
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "error: %s\n", ex.what());
            return 1;
        }
    }
    const std::string json_path = argc > 1 ? argv[1] : "bench_wkv_cuda.json";
    try {
        if (!torch::cuda::is_available()) {
            std::fprintf(stderr, "error: no CUDA device\n");
            return 1;
        }
        cudaDeviceProp prop{};
        check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        std::printf("device: %s, %d SMs; limits used: %.2f TB/s HBM, %.0f TFLOP/s fp32 (H100 SXM5)\n", prop.name,
                    prop.multiProcessorCount, kPeakBytesPerSec * 1e-12, kPeakFp32FlopsPerSec * 1e-12);
        for (const int H : {12, 32}) {
            bench_sequence<__nv_bfloat16>(torch::kBFloat16, "bf16", 8, 1024, H, 64, /*with_chunked=*/H == 12);
            bench_sequence<float>(torch::kFloat, "fp32", 8, 1024, H, 64, /*with_chunked=*/H == 12);
        }
        for (const int B : {1, 8}) {
            bench_decode<__nv_bfloat16>(torch::kBFloat16, "bf16", B, 32, 64);
            bench_decode<float>(torch::kFloat, "fp32", B, 32, 64);
        }
        write_json(json_path, prop.name);
        std::printf("wrote %s\n", json_path.c_str());
    } catch (const std::exception& ex) {
        write_json(json_path, "partial");
        std::fprintf(stderr, "error: %s\n", ex.what());
        return 1;
    }
    return 0;
}
