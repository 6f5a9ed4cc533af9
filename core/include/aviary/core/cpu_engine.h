// The CPU decode engine: the RNN step (and the sequence-mode prefill) of an Eagle (v5.2) / Finch (v6) model (spec
// §2.3–§2.7) without per-op LibTorch overhead. Weights are laid out once for matrix-vector products (row-major (out,
// in); LoRAs transposed), all buffers are preallocated, the element-wise parts (layer norm, token shift / ddlerp, LoRA,
// WKV update, group norm, gate, channel mix) are fused loops, the matrix-vector products run on SIMD kernels chosen at
// run time (cpu_engine_kernels.h) split by rows over a persistent thread pool. Weights in fp32, bf16 or int8 (per
// output row scales; int8 products round their input vector to int16 codes, see cpu_engine_kernels.h); decay, state,
// norms and LoRAs stay fp32 (spec §2.8). Model::step is the reference it is tested against
// (tests/core/test_cpu_engine.cpp).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "aviary/core/cpu_engine_options.h"
#include "aviary/core/model.h"
#include "aviary/core/state.h"

namespace aviary {

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
    // as GEMMs over the block (single-threaded products on row blocks of W run by the engine's threads, the BLAS
    // held at one thread meanwhile; see CpuEngineOptions::prefill_gemm for the formats), element-wise parts fused,
    // the WKV token by token per head.
    at::Tensor prefill(const at::Tensor& tokens, State& state);
    // The same from embedding rows x (1, T, D) (before ln0, as Model::forward_embeddings takes them) -> logits (1, V).
    // flip_count > 1: rows [flip_begin, flip_begin + flip_count) are reversed around every odd layer (VisualRWKV's
    // odd-block patch flip, spec A.4); such a prompt runs as one block.
    at::Tensor prefill_embeddings(const at::Tensor& x, State& state, int64_t flip_begin = -1, int64_t flip_count = 0);

    const std::string& dtype() const;  // "fp32", "bf16" or "int8"
    const char* kernel_name() const;   // "scalar", "avx2", "avx512" or "avx512vnni"
    // Switches the kernel set (matrix-vector products and WKV step; names as CpuEngineOptions::kernels) without
    // laying the weights out again: for A/B benchmarks that alternate sets step by step over the same weights
    // (aviary-bench-decode-ab). Throws aviary::Error when the CPU lacks the set. Every set computes the same model.
    void use_kernels(const std::string& name);
    // The prefill GEMM path of the big matrices: "onednn-bf16", "onednn-int8", "blas" or "libtorch".
    std::string prefill_gemm_name() const;
    int threads() const;
    double weight_bytes_per_token() const;  // bytes of weights one step reads (matrices, LoRAs, one emb row)
    // The fraction of the engine's weight memory resident on 2 MiB pages now (huge_pages.h; /proc/self/smaps): 0 where
    // the kernel gives none (transparent huge pages off) or it cannot be read.
    double weights_on_huge_pages() const;
    // FLOPs per token of sequence mode: sequence_flops_per_token(config()) (config.h: 2 per weight of every layer
    // matrix and LoRA, ~4 per WKV state element; the head is left out, prefill computes it for the last token only).
    double prefill_flops_per_token() const;
    // The prefill GEMM path's rate on this CPU in GFLOP/s: the largest layer matrix (channel-mix key) times a full
    // block of prefill_chunk rows, as prefill runs it (same threads, same path). `aviary bench` divides it by
    // prefill_flops_per_token() for the prefill compute floor.
    double measure_prefill_gemm_gflops();
    // The fastest of the GEMM paths this engine's weights can take on this CPU (its own, the BLAS blocks, oneDNN),
    // each measured as above: {its name as prefill_gemm_name() gives it, GFLOP/s}. A compute floor divides by this
    // rate, so that no path, forced or chosen, can beat its floor.
    std::pair<std::string, double> measure_fastest_gemm_gflops();
    // One decode step's weight reads alone, in GB/s: the engine's kernels over the model's own matrices in a step's
    // order, none of the step's other work. With measure_read_bandwidth_gbps (a plain streaming read), the faster of
    // the two is a read rate that a whole decode step, which does these reads and more, cannot beat.
    double measure_weight_read_gbps();
    const ModelConfig& config() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The engine for `model` with the model's own engine options (ModelOptions::cpu_engine), built once and reused while
// the model's weights stay the same (building an int8 engine quantises every matrix). It is kept with the model
// (Model::derived_cache) and freed with it, so a process that serves several models (text, VisualRWKV) keeps one engine
// each. Calls on an engine are serialised by a mutex inside it. nullptr when !CpuEngine::supports(model).
std::shared_ptr<CpuEngine> shared_cpu_engine(const Model& model);

// The prefill GEMM path an engine of weight format `dtype` ("fp32", "bf16", "int8") takes for the option
// CpuEngineOptions::prefill_gemm (with $AVIARY_PREFILL_GEMM applied to "auto"): "onednn", "blas" or "libtorch".
// Throws aviary::Error for an unknown name, or "onednn" in a build without oneDNN.
std::string prefill_gemm_path(const std::string& dtype, const std::string& option = "auto");

// Memory read bandwidth in GB/s (read_bandwidth.cpp): `threads` threads (<= 0: aviary::thread_count()) each sum
// their share of a buffer with the widest vector loads the CPU has (AVX-512, AVX2, else 16 bytes), eight independent
// accumulators; the best of several passes. The buffer: working_set_bytes > 0: that many bytes, read again and again
// (a decode step's weights: the rate a decode that reads them can reach, cache included); else max(1 GiB, 4 × the
// last-level cache) (DRAM). `aviary bench` divides the working-set rate by weight_bytes_per_token() for the decode
// floor; no decode can read its weights faster than that.
double measure_read_bandwidth_gbps(int threads, double working_set_bytes = 0);

}  // namespace aviary
