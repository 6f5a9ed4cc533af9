// The CPU decode engine: the RNN step (and the sequence-mode prefill) of an Eagle (v5.2) / Finch (v6) model (spec §2.3–§2.7) without per-op
// LibTorch overhead. Weights are laid out once for matrix-vector products (row-major (out, in); LoRAs transposed),
// all buffers are preallocated, the element-wise parts (layer norm, token shift / ddlerp, LoRA, WKV update, group
// norm, gate, channel mix) are fused loops, the matrix-vector products run on SIMD kernels chosen at run time
// (cpu_engine_kernels.h) split by rows over a persistent thread pool. Weights in fp32, bf16 or int8 (per output
// row scales; int8 products round their input vector to int16 codes, see cpu_engine_kernels.h); decay, state, norms
// and LoRAs stay fp32 (spec §2.8). Model::step is the reference it is tested
// against (tests/core/test_cpu_engine.cpp).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "aviary/core/model.h"
#include "aviary/core/state.h"

namespace aviary {

struct CpuEngineOptions {
    // Matrix weight format: "auto" (the model's: fp32 or bf16), "fp32", "bf16" or "int8".
    std::string dtype = "auto";
    // Threads of the engine's pool; <= 0: chosen by measurement at construction (1 .. aviary::thread_count(),
    // the fastest head matrix-vector product).
    int threads = 0;
    // Kernel set: "auto" (best supported; $AVIARY_CPU_KERNEL overrides), "scalar", "avx2" or "avx512".
    std::string kernels = "auto";
    // Prefill: tokens per block (the GEMMs' row count; buffers grow with it, the state carries across blocks).
    int64_t prefill_chunk = 256;
};

class CpuEngine {
public:
    // Reads the weights through model.state_dict() (the model must outlive the engine when dtype is the model's
    // own fp32: those matrices are used in place). Throws aviary::Error when !supports(model).
    CpuEngine(const Model& model, const CpuEngineOptions& options = {});
    ~CpuEngine();
    CpuEngine(const CpuEngine&) = delete;
    CpuEngine& operator=(const CpuEngine&) = delete;

    // A CPU model in inference mode without LoRA adapters (adapters go through Model::step or merge_lora first).
    static bool supports(const Model& model, std::string* why = nullptr);

    // One token per sequence: tokens (B) int64, state with batch B (fp32 CPU tensors; updated in place, made
    // contiguous first if needed) -> logits (B, V) fp32. Token ids are range-checked.
    at::Tensor step(const at::Tensor& tokens, State& state);
    // The same on raw memory: logits (B, V) row-major.
    void step(const int64_t* tokens, int64_t batch, State& state, float* logits);
    // A prompt in sequence mode (Model::forward with all_logits = false): tokens (B, T) int64 -> logits of each
    // sequence's last token (B, V) fp32; the state is updated in place. Blocks of prefill_chunk tokens: the matrices
    // as GEMMs over the block (single-threaded sgemm calls on row blocks of W run by the engine's threads, the BLAS
    // held at one thread meanwhile; bf16 / int8 rows widened to fp32 per block, so the result is the fp32 model of
    // the rounded weights), element-wise parts fused, the WKV token by token per head.
    at::Tensor prefill(const at::Tensor& tokens, State& state);

    const std::string& dtype() const;  // "fp32", "bf16" or "int8"
    const char* kernel_name() const;   // "scalar", "avx2" or "avx512"
    int threads() const;
    double weight_bytes_per_token() const;  // bytes of weights one step reads (matrices, LoRAs, one emb row)
    const ModelConfig& config() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Process-wide engine options used by Decoder (and so by generate, chat, the studio, bench): the CLI sets them
// from --dtype int8 / --threads. Defaults: the model's dtype, aviary::thread_count() threads, best kernels.
void set_default_cpu_engine_options(const CpuEngineOptions& options);
CpuEngineOptions default_cpu_engine_options();

// The engine for `model` with the default options, built once and reused while the model's weights and the options
// stay the same (one cached engine: building an int8 engine quantises every matrix). Calls on the engine are
// serialised by a mutex inside it. nullptr when !CpuEngine::supports(model).
std::shared_ptr<CpuEngine> shared_cpu_engine(const Model& model);

// Memory read bandwidth in GB/s with `threads` threads (<= 0: aviary::thread_count()) each summing its share of a
// 512 MiB buffer; the best of several passes. The decode floor of `aviary bench` divides this by
// weight_bytes_per_token().
double measure_read_bandwidth_gbps(int threads);

}  // namespace aviary
