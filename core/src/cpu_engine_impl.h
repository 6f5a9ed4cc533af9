// Private to the CPU engine's own files (cpu_engine*.cpp, one concern each: construction and threads, weights, the
// decode step, the prefill, the weight-read probe, the per-head WKV loops, the shared engine per model): the engine's
// state (CpuEngine::Impl) and the helpers its parts share. Not installed; nothing outside core/src includes it.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_kernels.h"
#include "aviary/core/cpu_engine_pool.h"
#include "aviary/core/huge_pages.h"
#include "aviary/core/threads.h"
#include "aviary/core/vec_math.h"

namespace aviary {
namespace engine_internal {

using cpu::MatView;
using cpu::WeightType;

constexpr float kLayerNormEps = 1e-5f;
constexpr float kGroupNormEps = 64e-5f;  // = eps 1e-5 on x / head_size_divisor 8 (spec §2.2)

// What a matrix-vector task does with each dot product s of row r, batch item b.
enum class Epilogue {
    kStore,     // y = s
    kTanh,      // y = tanh(s)                       (LoRA down-projections)
    kSilu,      // y = s·σ(s)                        (gate)
    kReluSq,    // y = max(s, 0)²                    (channel-mix key)
    kSigmoid,   // y = σ(s)                          (channel-mix receptance)
    kDecay,     // y = exp(−exp(bias[r] + s))        (v6 dynamic decay)
    kAddTo,     // dst += s                          (residual add of att.output)
    kAddMulTo,  // dst += mul·s                      (residual add of σ(r)·(W_v κ))
};

struct Task {
    const MatView* w;
    const float* x;
    int64_t x_stride;
    float* y;  // the raw products (and the result for the in-place epilogues)
    int64_t y_stride;
    Epilogue epilogue = Epilogue::kStore;
    const float* bias = nullptr;  // kDecay: (rows)
    float* dst = nullptr;         // kAddTo / kAddMulTo, same stride as y
    const float* mul = nullptr;   // kAddMulTo, same stride as y
};
// Vectorisable e^x, σ and tanh (vec_math.h: ≤ 1.2 ulp; tanh ≤ 2.7e-7 relative): the element-wise epilogues run them on
// every product's output.
using cpu::exp_approx;
inline float sigmoid(float s) {
    return cpu::sigmoid_approx(s);
}
// LayerNorm over n values: (x − mean)/sqrt(var + eps)·w + b, biased variance (PyTorch's). cpu_engine_head.cpp.
void layer_norm(const float* x, const float* w, const float* b, int64_t n, float* out);

// One token of one head (WKV step, spec §2.5.1), then its GroupNorm and gate; built for AVX-512, AVX2 and baseline
// x86-64 from one body (cpu_engine_head.cpp). head_step_for: the version for a kernel set ("avx512", "avx2", else
// baseline); the set's own check ensures the CPU has it.
using HeadStepFn = void (*)(int64_t N, const float* rr, const float* kk, const float* vv, const float* uu,
                            const float* dd, float* S, float* y, const float* gw, const float* gb, const float* gg);
HeadStepFn head_step_for(const std::string& kernel_set);

// A tensor's values as fp32 (cpu_engine_weights.cpp).
std::vector<float> to_vector(const at::Tensor& t);

struct Layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b, lnx_w, lnx_b;
    // Static token-shift weights on d = prev − a: x_c = a + d·m_c. v5: m_c = 1 − time_mix_c (spec §2.3 rewritten);
    // v6: m_c = time_maa_c (+ the LoRA δ_c at run time; §2.4).
    std::vector<float> m_x, m_w, m_k, m_v, m_r, m_g;
    std::vector<float> ffn_m_k, ffn_m_r;
    std::vector<float> decay;      // v5: exp(−exp(time_decay)) (A); v6: time_decay (A), the static part of w_raw
    std::vector<float> u;          // time_faaaa (A)
    MatView maa_w1t;               // v6: (5·Lm, D) = time_maa_w1ᵀ
    MatView maa_w2t[5];            // v6: (D, Lm) = time_maa_w2[c]ᵀ, c in w, k, v, r, g
    MatView decay_w1t, decay_w2t;  // v6: (Ld, D), (A, Ld)
    // v6, for the prefill's short-K products (prefill_short_k): time_maa_w2 (5, Lm, D) and time_decay_w2 (Ld, A) as
    // the checkpoint stores them, k-major, in fp32 (the model's own tensors where it holds them in fp32).
    const float* maa_w2 = nullptr;
    const float* decay_w2 = nullptr;
    MatView att_r, att_k, att_v, att_g, att_o, ffn_k, ffn_r, ffn_v;
};

}  // namespace engine_internal
using namespace engine_internal;  // the engine's files only

struct CpuEngine::Impl {
    std::mutex mutex;  // one step at a time (the work buffers are shared)
    ModelConfig cfg;
    std::string dtype;
    const cpu::KernelSet* kernels = nullptr;
    HeadStepFn head_step = head_step_for("");  // WKV + GroupNorm + gate of one head and token, in the kernels' ISA
    cpu::ShortKTileFn short_k_tile = cpu::short_k_tile_for("");  // the prefill's short-K products, the same ISA
    // kernels and head_step for a CpuEngineOptions::kernels name ("auto": kernels_best, which $AVIARY_CPU_KERNEL may
    // force): the constructor and use_kernels.
    void select_kernels(const std::string& name);
    std::unique_ptr<cpu::ThreadPool> pool;
    // Where the MatViews' data live: the engine's own layouts (int8 codes and scales, converted or transposed
    // matrices) in `arena`, on huge pages and one after another in load order (huge_pages.h); the model's own tensors
    // where the engine reads them as they are (`keep`: fp32 in fp32, bf16 in bf16), on the pages the model has: the
    // checkpoint readers put tensors of 2 MiB and more on huge pages (checkpoint_readers.h); moving others in place
    // (MADV_COLLAPSE) cost ~3 s per 1.7 GB at load for ~2 % of decode (docs/BENCHMARKS.md).
    cpu::HugeArena arena;
    std::vector<at::Tensor> keep;
    // A converted matrix's bytes in the arena, or `converted` itself when it is the model's own memory (`original`).
    const void* place(const at::Tensor& converted, const at::Tensor& original);
    std::vector<Layer> layers;
    std::vector<float> ln0_w, ln0_b, ln_out_w, ln_out_b;
    MatView emb, head;
    double bytes_per_token = 0;
    double prefill_flops_per_token = 0;

    // Work buffers for the current batch (resized when the batch changes).
    int64_t batch = 0;
    std::vector<float> x, a, d, m0, h5, delta, dh, xw, xk, xv, xr, xg, r, k, v, g, decay, o, tmp, ffk, ffr;

    // ---- weights ----
    const at::Tensor& tensor(const std::map<std::string, at::Tensor>& sd, const std::string& name);

    // A big matrix (out, in) in the engine's weight format.
    MatView matrix(const at::Tensor& t0);

    // A small matrix (the LoRAs: fp32, or bf16 in a bf16 / int8 engine where bf16 holds it exactly; never int8, and
    // always multiplied by fp32 activations: MatView::fp32_activations; spec §2.8).
    MatView small_matrix(const at::Tensor& t0);

    void load(const Model& model);

    // The embedding row of `token` in fp32.
    void embedding_row(int64_t token, float* out) const;

    // Sizes one set of per-row buffers (decode: a row per sequence; prefill: a row per token of the chunk), zeroed;
    // delta_rows may be null (none kept).
    void size_rows(int64_t rows, std::initializer_list<std::vector<float>*> width_d,
                   std::initializer_list<std::vector<float>*> width_a, std::vector<float>& h5_rows,
                   std::vector<float>* delta_rows, std::vector<float>& dh_rows, std::vector<float>& ffk_rows) const;

    void resize(int64_t B);

    // ---- parallel pieces ----
    void apply_epilogue(const Task& t, int64_t r0, int64_t r1) const;

    // Chunks for a job of `units` work units: a few per thread so that a thread that is descheduled or slow leaves
    // its share to the others (cpu_engine_pool.h), but no chunk smaller than `min_units`.
    int chunk_count(int64_t units, int64_t min_units) const;

    // Runs the tasks as one job: their rows, laid end to end, are cut into chunks (multiples of 16 rows).
    void run(std::initializer_list<Task> tasks) { run(std::vector<Task>(tasks)); }
    void run(const std::vector<Task>& list);
    // When set, run() also appends each task list it runs here (the weight-read probe replays a real step's jobs).
    std::vector<std::vector<Task>>* recorded = nullptr;

    // WKV (spec §2.5.1) for every (sequence, head), then GroupNorm over the head (eps 64e-5) and the gate:
    // o = GroupNorm(y) ⊙ g. S is [b][h][key j][value i].
    void wkv_group_norm_gate(const Layer& L, float* S_all, const float* decay_base, int64_t decay_stride);

    void layer(int l, State& state);

    // ---- prefill (sequence mode): blocks of up to prefill_chunk tokens of one sequence ----
    // The matrices run as GEMMs over the block's rows (gemm() below: single-threaded products on blocks of W's rows
    // claimed by the pool, or on blocks of the tokens where W has too few rows to share out; bf16 / int8 rows widened
    // per block, element-wise epilogues applied per block), the other element-wise parts are fused loops over rows,
    // and the WKV runs token by token per head (T·H·N² per layer: ~1 % of the GEMMs' FLOPs at head size 64, but
    // 5–9 % of a 0.1B prefill's time, measured on a Zen 4 core).
    int64_t prefill_chunk = 256;
    enum class GemmPath { kOneDnn, kBlas, kLibTorch };
    GemmPath gemm_path = GemmPath::kBlas;  // for the bf16 / int8 matrices (fp32 ones: kBlas, or kLibTorch if forced)
    SgemmRowMajorFn sgemm = blas_sgemm_row_major();  // the BLAS's own row-major sgemm; nullptr: at::mm_out
    std::vector<uint16_t> gemm_xb;                   // X in bf16 (onednn-bf16)
    std::vector<int8_t> gemm_xq;                     // X as int8 codes (onednn-int8)
    std::vector<float> gemm_xs;                      // their scale per row
    std::vector<float> gemm_wide;                    // a bf16-stored LoRA widened to fp32 (gemm())
    // Weight-row blocks per thread in a prefill GEMM: more blocks shorten the wait for the last one (the threads
    // claim blocks dynamically), fewer keep each product larger. $AVIARY_GEMM_BLOCKS overrides (measurements).
    // fp32 matrices (the LoRAs of a bf16/int8 engine) on oneDNN's fp32 kernels too ($AVIARY_LORA_GEMM=blas: the BLAS)
    bool f32_on_onednn = [] {
        const char* env = std::getenv("AVIARY_LORA_GEMM");
        return !(env && std::string(env) == "blas");
    }();
    int gemm_blocks_per_thread = [] {
        const char* env = std::getenv("AVIARY_GEMM_BLOCKS");
        return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
    }();

    void choose_gemm_path(const std::string& option);
    std::pair<std::string, double> measure_fastest_gemm();  // CpuEngine::measure_fastest_gemm_gflops

    std::string gemm_name() const;

    int64_t prefill_rows = 0;  // rows the buffers below hold
    std::vector<float> px, pa, pd, pm0, ph5, pdh, pxw, pxk, pxv, pxr, pxg, pr, pk, pv, pg, pdec, po, ptmp, pffk, pffr;

    void prefill_resize(int64_t T);

    // fn(t0, t1) over [0, T) split across the pool.
    template <class Fn>
    void for_rows(int64_t T, Fn&& fn);

    // Row r of a bf16 / int8 matrix widened to fp32 (inline: a plain loop the compiler vectorises).
    static void widen_row(const MatView& w, int64_t r, float* out);

    // Rows [r0, r1) of the matrix in fp32: its own data, or widened into the calling thread's scratch.
    static const float* widen_rows(const MatView& w, int64_t r0, int64_t r1);

    struct NoEpilogue {};

    // A GEMM's activations as its path reads them (gemm()): fp32 as they are, or, on oneDNN, bf16 or int8 codes with
    // one scale per row, converted once per GEMM. A producer that holds whole rows converts them itself into a
    // PreparedX (the same conversion, so the same bits): its fp32 rows are then never written, and gemm() skips its
    // own conversion pass. x_format: what gemm() reads for w.
    enum class XFormat { kF32, kBF16, kI8 };
    XFormat x_format(const MatView& w) const;
    struct PreparedX {
        XFormat format = XFormat::kF32;
        std::vector<uint16_t> bf16;
        std::vector<int8_t> q;
        std::vector<float> scale;
        void reset(XFormat f, int64_t T, int64_t cols);       // sized for T rows of cols
        void put(int64_t t, const float* row, int64_t cols);  // row t converted (bf16 / int8 formats)
    };
    PreparedX prep[4];  // the prefill's k, v, r, g inputs (the channel mix's k and r reuse [0] and [2])

    // Y (T, w.rows), row-major = X (T, w.cols; row stride x_stride) · wᵀ, then Y[j] ← post(Y[j], j, i) for every flat
    // index j = t·w.rows + i (i: the weight row) unless post is NoEpilogue. The output columns = weight rows are cut
    // into blocks that the pool's threads claim; each block is one single-threaded product (prefill() holds a
    // BlasSingleThreadScope) on its rows of W, writing its columns of Y in place, followed by `post` on the block while
    // it is still in cache. So the weights are read once, by one thread, no BLAS worker competes with the pool, and the
    // element-wise step costs no pass of its own. The product of a block:
    //  - onednn (bf16 / int8 matrices): X converted once per GEMM (bf16, or int8 codes with one scale per token), the
    //    block through oneDNN on the matrix units; int8 rows are then scaled by their token's scale;
    //  - blas / libtorch: bf16 / int8 rows widened into the thread's scratch, then the BLAS's cblas_sgemm (measured
    //    ~15 % faster than going through LibTorch) or at::mm_out.
    //  - `prepared` (optional, in w's x_format): X already converted by its producer, which then need not write X.
    template <class Post = NoEpilogue>
    void gemm(const MatView& w, const float* X, int64_t T, int64_t x_stride, float* Y, Post&& post = Post{},
              const PreparedX* prepared = nullptr);

    // `count` products with a short inner dimension K (the LoRAs' second halves: K = Lm or Ld) in one pass: for c <
    // count, Y[c] (T, N) = H[:, c·K, (c+1)·K) (row stride h_stride) · W_c (K, N, k-major; W_c = W + c·K·N), then
    // Y[c][j] ← post(c, Y[c][j], j, i) (i: the column). Through gemm() these ran at ~30 GFLOP/s per Zen 4 core (K = 32:
    // a GEMM block's stores outweigh its multiply-adds) and one pool run per product; here the pool's threads take the
    // tokens in turn, four at a time: short_k_tile (cpu_engine_kernels.h) writes their whole output rows into the
    // thread's scratch (L1), `post` takes each row from there. Every output is one chain of fused multiply-adds over
    // k, so every path, kernel set and thread count gives the same bits.
    // A null Y[c]: the rows are not stored; sink(c, t, row) takes each finished row (N values) instead.
    template <class Post, class Sink>
    void prefill_short_k(int count, const float* H, int64_t T, int64_t h_stride, const float* W, int64_t K, int64_t N,
                         float* const* Y, Post&& post, Sink&& sink);

    // One layer over T rows of one sequence; att_prev / ffn_prev (D) and S (H, N, N) are that sequence's state.
    void prefill_layer(const Layer& L, int64_t T, float* att_prev, float* ffn_prev, float* S);

    // tokens (B, T) row-major -> logits of each sequence's last token (B, V).
    void prefill(const int64_t* tokens, int64_t B, int64_t T, State& state, float* logits);

    // One sequence (batch row b of the state) of T input rows: fill(t, row) writes the embedding row of position t
    // (before ln0); its last position's logits go to `logits` (V). Rows [flip_begin, flip_begin + flip_count) are
    // reversed before every odd layer and restored after it (VisualRWKV's image patches, spec A.4), so such a range
    // is run in one block whatever prefill_chunk is.
    template <class Fill>
    void prefill_sequence(int64_t T, int64_t b, State& state, float* logits, int64_t flip_begin, int64_t flip_count,
                          Fill&& fill);

    // GFLOP/s of the prefill GEMM path (gemm() as prefill runs it) on the largest layer matrix, the channel-mix key
    // (F, D), with a full block of prefill_chunk rows; the best of 15 after a warm-up (a busy neighbour only ever
    // slows a repetition down, so the best one is the machine's rate).
    double measure_gemm_gflops();

    // GB/s of one decode step's weight reads alone: the matrix jobs of one real batch-1 step (recorded from run()),
    // replayed in order on the engine's threads without their epilogues and none of the step's other work; best of 8
    // after a warm-up.
    double measure_weight_read_gbps();

    // Thread count by measurement (options.threads <= 0): the head product (the largest matrix) timed with 1..max
    // threads, best of three each; the fastest count wins. On a 2-core machine with a busy neighbour 1 thread can
    // beat 2 (a descheduled worker stalls every barrier).
    void choose_threads(int max_threads);

    void prepare_state(State& state, int64_t B);

    void step(const int64_t* tokens, int64_t B, State& state, float* logits);
};

}  // namespace aviary
