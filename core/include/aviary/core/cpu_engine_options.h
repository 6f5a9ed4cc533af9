// How the CPU decode engine (cpu_engine.h) built for a model runs: weight format, threads, kernels, prefill blocks and
// GEMM path. A model carries its own (ModelOptions::cpu_engine), so two models in one process (a server's text and
// VisualRWKV models, a test's reference and candidate) never share or overwrite each other's settings.
#pragma once
#include <cstdint>
#include <string>

namespace aviary {

struct CpuEngineOptions {
    // Matrix weight format: "auto" (the model's: fp32 or bf16), "fp32", "bf16" or "int8".
    std::string dtype = "auto";
    // Threads of the engine's pool; <= 0: chosen by measurement at construction (1 .. aviary::thread_count(),
    // the fastest head matrix-vector product).
    int threads = 0;
    // Kernel set: "auto" (best supported; $AVIARY_CPU_KERNEL overrides), "scalar", "avx2", "avx512" or
    // "avx512vnni".
    std::string kernels = "auto";
    // Prefill: tokens per block (the GEMMs' row count; buffers grow with it, the state carries across blocks).
    int64_t prefill_chunk = 256;
    // Prefill GEMMs of the bf16 / int8 matrices: "auto" ($AVIARY_PREFILL_GEMM overrides), "onednn" (cpu_gemm.h: bf16
    // activations × bf16 weights, or int8 activations with one scale per token × int8 weights, on AMX / AVX512-BF16 /
    // VNNI), "blas" (the reference: weight rows widened to fp32, single-threaded cblas_sgemm blocks) or "libtorch"
    // (the same blocks through at::mm_out). "auto" takes oneDNN where it beats the BLAS path: bf16 on AMX-BF16, and on
    // AVX512-BF16 alone where cpu::bf16_gemm_rates() measured it faster on this CPU (it is on some, not on others),
    // int8 on AMX-INT8 or VNNI; else blas. fp32 matrices always take the blas path (exact).
    std::string prefill_gemm = "auto";
};

}  // namespace aviary
