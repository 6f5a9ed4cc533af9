// Training: AdamW with the official RWKV parameter groups (spec §7.4), warm-up
// + cosine LR (§7.5), gradient clipping and accumulation, loss masks, L2Wrap
// (§7.5), freezing by name glob, atomic checkpoints with bit-exact resume, a
// JSONL log and callbacks (no printing). The Trainer is generic (any named
// parameters and any loss), so vision/audio/music reuse it;
// train_language_model() is the token-LM loop on top of it.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aviary/core/checkpoint.h"
#include "aviary/core/model.h"
#include "aviary/core/train_data.h"

namespace aviary {

class Communicator;  // distributed.h

// The arithmetic of the forward pass (trainer.cpp). The master weights, their gradients and the AdamW state are
// fp32 in every mode. Bf16: CPU autocast to bfloat16 around each micro-batch's forward and loss, so the matrix
// products run on the CPU's bf16 units (oneDNN; AMX or AVX512-BF16) with fp32 accumulation, while the WKV
// recurrence and its state (wkv_dispatch.cpp), the residual stream, the norms and the loss stay fp32; the step
// then runs LibTorch's intra-op pool on all threads (TorchThreadsScope). Auto: bf16 when the parameters are on the
// CPU and bf16_training_faster() (AMX-BF16 tiles, or AVX512-BF16 products measured faster here), else fp32 (with
// AVX512-BF16 alone, oneDNN 2.6.3's bf16 matmuls can be slower than the fp32 BLAS: a music-recipe step measured
// 0.593 s bf16 vs 0.541 s fp32 on a model-207 Xeon without AMX, 2026-12-06; with AMX 0.225 vs 0.358 s, on an AMD EPYC
// Zen 4 0.36 vs 0.50 s, docs/TRAINING.md §8).
enum class TrainPrecision { Auto, Fp32, Bf16 };
// "auto" | "fp32" | "bf16"; anything else is an aviary::Error naming the choices.
TrainPrecision parse_train_precision(const std::string& name);
const char* train_precision_name(TrainPrecision precision);  // "auto", "fp32", "bf16"
// True when the CPU has AMX-BF16 (cpuid).
bool cpu_has_amx_bf16();
// Where bf16 training is the default: AMX-BF16, or AVX512-BF16 where oneDNN's bf16 products measured faster than the
// fp32 BLAS on this CPU (cpu_gemm.h bf16_gemm_rates(): on an AMD EPYC Zen 4 a music-recipe step took 0.353–0.360 s
// bf16 vs 0.499–0.500 s fp32, 2026-12-07, docs/TRAINING.md §8).
bool bf16_training_faster();
// The precision a Trainer uses: Auto becomes Bf16 or Fp32 as described above; explicit choices stay (Bf16 with
// parameters off the CPU is an error: the autocast is the CPU's).
TrainPrecision resolve_train_precision(TrainPrecision precision, bool parameters_on_cpu);

struct TrainOptions {
    int64_t steps = 100;      // optimizer steps of the whole run (the schedule spans them)
    int64_t batch = 4;        // sequences per micro-batch
    int64_t ctx_len = 128;    // T
    int64_t grad_accum = 1;   // micro-batches per optimizer step
    double lr = 6e-4;         // lr_init
    double lr_final = 6e-5;   // cosine floor
    int64_t warmup = 10;      // steps of lr × (0.2 + 0.8·step/warmup)
    double weight_decay = 0;  // > 0 creates the decay group (matrices and
                              // embeddings), as the official code
    double grad_clip = 1.0;   // max global grad norm; 0 = off
    double beta1 = 0.9, beta2 = 0.99, adam_eps = 1e-8;
    bool l2wrap = true;
    std::vector<std::string> freeze;  // name globs ('*' any run, '?' one char), e.g. "blocks.*.att.*"
    // When non-empty, only parameters matching one of these globs are trained
    // (everything else frozen), e.g. "proj.*" for adapters.
    std::vector<std::string> train_only;
    uint64_t seed = 42;
    TrainPrecision precision = TrainPrecision::Auto;  // resolved by the Trainer (resolve_train_precision)
};

// The official LR multiplier groups (spec §7.4; layerwise_lr, stage != 2).
enum class ParamGroup { Base, Decay2x, First3x, WeightDecay };
ParamGroup classify_parameter(const std::string& name, const at::Tensor& param, double weight_decay);
double group_lr_multiplier(ParamGroup group);  // 1, 2, 3, 1
const char* group_name(ParamGroup group);

// lr at optimizer step `step` (0-based): cosine from lr to lr_final over steps
// after warmup, lr·[(0.5 + f/2) + (0.5 − f/2)·cos(π·p)], f = lr_final/lr;
// during warmup × (0.2 + 0.8·step/warmup).
double learning_rate(const TrainOptions& options, int64_t step);

// Returns `loss` unchanged; its backward adds, at each position's arg-max
// logit, max·1e-4/(B·T) (scaled by the incoming gradient, so that accumulation
// over micro-batches equals one larger batch). logits (B, T, V).
at::Tensor l2wrap(const at::Tensor& loss, const at::Tensor& logits);

// Mean cross-entropy of logits (B, T, V) against targets (B, T) over positions
// where mask (B, T) is non-zero (mask may be undefined = all). With
// `use_l2wrap` the L2Wrap gradient is attached.
at::Tensor lm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& mask, bool use_l2wrap);

struct StepResult {
    double loss = 0;       // mean of the micro-batch losses
    double lr = 0;         // base lr of this step
    double grad_norm = 0;  // before clipping
};

class Trainer {
public:
    // `params` alias the parameters to train (Model::state_dict()); names
    // matching a freeze glob get requires_grad = false and stay out of the
    // optimizer.
    Trainer(const TensorList& params, const TrainOptions& options);
    ~Trainer();
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    // One optimizer step: for micro = 0..grad_accum−1, backward of
    // micro_loss(micro) / grad_accum; then clipping and AdamW with this step's
    // per-group lr. With Bf16 precision micro_loss runs under the bf16 autocast
    // (the backward and the optimizer outside it).
    StepResult step(const std::function<at::Tensor(int64_t micro)>& micro_loss);

    int64_t step_count() const;  // optimizer steps done
    const TensorList& trainable() const;
    const TrainOptions& options() const;  // with options().precision resolved (Fp32 or Bf16)
    ParamGroup group_of(const std::string& name) const;

    // Data parallelism: after the micro-batches' backward, step() averages the
    // gradients (and the reported loss) over the communicator's ranks, so every
    // rank applies the same update. nullptr (the default): one process.
    void set_communicator(std::shared_ptr<Communicator> comm);

    // AdamW state per parameter: "<name>/exp_avg", "<name>/exp_avg_sq",
    // "<name>/step" (int64 scalar).
    TensorList optimizer_state() const;
    void load_optimizer_state(const TensorList& state, int64_t step_count);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---- checkpoints (train_checkpoint.cpp) ----
// DIR/checkpoints/step-00000010/{model.safetensors, optimizer.safetensors,
// trainer.json}: written in a temporary directory (each file fsynced), then
// renamed as a whole; trainer.json is written last, so a directory without it
// is never used. Rotation keeps the newest keep_last plus the best (lowest
// loss).
struct CheckpointInfo {
    std::string path;
    int64_t step = 0;
    int64_t data_position = 0;  // next sample index of the window sampler
    double loss = 0;            // loss of the saved step
    double elapsed_s = 0;       // training time so far (all invocations)
};
void save_train_checkpoint(const std::string& out_dir, const Model& model, const Trainer& trainer,
                           const CheckpointInfo& info, int keep_last);
// The newest complete checkpoint in out_dir, or an empty path.
std::string latest_train_checkpoint(const std::string& out_dir);
// Loads weights, optimizer state and RNG into model/trainer; checks that the
// checkpoint's tensors have the model's names and shapes (a checkpoint of
// another model is an error naming the first difference).
CheckpointInfo load_train_checkpoint(const std::string& checkpoint_dir, Model& model, Trainer& trainer);
// The same for models that are not an aviary::Model (vision, audio, …): `weights` are the trainable module's named
// tensors (saved as they are, loaded in place), `model_json` describes it in trainer.json, `weights_metadata` goes
// into model.safetensors (audio: its config and labels, so that the checkpoint's weights are a model file).
void save_train_checkpoint(const std::string& out_dir, const TensorList& weights, const std::string& model_json,
                           const Trainer& trainer, const CheckpointInfo& info, int keep_last,
                           const Metadata& weights_metadata = {{"format", "pt"}});
CheckpointInfo load_train_checkpoint(const std::string& checkpoint_dir, const TensorList& weights, Trainer& trainer);
// A checkpoint's three files already in memory (load_train_checkpoint maps the files of checkpoint_dir and reads them
// the same way): errors name `checkpoint_dir` and 'checkpoint_dir/trainer.json' etc. as if the files were there.
struct TrainCheckpointBytes {
    std::string_view trainer_json, model, optimizer;  // trainer.json, model.safetensors, optimizer.safetensors
};
CheckpointInfo load_train_checkpoint_bytes(const TrainCheckpointBytes& files, const std::string& checkpoint_dir,
                                           const TensorList& weights, Trainer& trainer);
// For tests: make the next checkpoint write throw after `files` of its files
// are written (−1 = off).
void set_checkpoint_failure_for_testing(int files);
// For tests: make the next removal of a checkpoint directory (rotation, the same step saved again) throw after
// `files` of its files are deleted, as a kill there would stop it (−1 = off).
void set_checkpoint_removal_failure_for_testing(int files);

// ---- what every training loop does at its start (train_checkpoint.cpp) ----
// Removes what writes killed mid-way left in out_dir: AtomicFile temporaries (".NAME.tmp-XXXXXX") and
// checkpoints/.tmp-* directories. None of them is ever read; they only take space. Call it before writing anything.
void clear_interrupted_writes(const std::string& out_dir);
// Seeds LibTorch's global CPU generator (which LibTorch seeds from /dev/urandom at start-up) with the training
// seed, so that a run and its checkpoints (which hold that generator's state) are a function of the seed; a
// resumed run then restores the checkpoint's state over it.
void seed_training_rng(uint64_t seed);
// train_log.jsonl of a run that starts at step `last_step` (0: a fresh run): keeps the whole lines of steps up to
// it (a line cut by a kill, or steps after the checkpoint, which the resumed run logs again, are dropped), written
// atomically, so the log holds each step once.
void restart_train_log(const std::string& path, int64_t last_step);

// ---- the token-LM loop (train_loop.cpp) ----
struct TrainProgress {
    int64_t step = 0, total = 0;  // steps done / of the run
    double loss = 0, lr = 0, tokens_per_s = 0, elapsed_s = 0, grad_norm = 0;
    int64_t tokens = 0;  // tokens trained on so far (this run and resumed ones)
};
struct TrainCallbacks {
    std::function<bool(const TrainProgress&)> on_progress;  // false: save a checkpoint and stop
    std::function<bool()> should_stop;                      // polled between steps; true: same as above
    std::function<void(const std::string&)> on_checkpoint;  // path of each checkpoint written
};
struct LmTrainConfig {
    TrainOptions train;
    std::string out_dir;     // checkpoints/, train_log.jsonl, model.safetensors
    bool resume = false;     // continue from the newest checkpoint in out_dir (none:
                             // start fresh)
    int64_t save_every = 0;  // steps between checkpoints (0: only when stopping and at the end)
    int keep_last = 2;
    // LoRA fine-tuning: adapters are added to the model (unless it has them) and,
    // when train.train_only is empty, only they are trained. The exported
    // model.safetensors has them merged; OUT/lora.safetensors holds them alone.
    bool lora = false;
    LoraOptions lora_options;
    // State tuning (official --train_type states): the model gets a trainable
    // time_state per layer (Model::add_time_state) and, when train.train_only is
    // empty, only the time_state tensors are trained.
    bool train_state = false;
    // Data parallelism (distributed.h): every rank runs this function with the
    // same data, seed and options; each global micro-batch of world·batch
    // windows is split so rank r takes rows [r·batch, (r+1)·batch). Gradients
    // are averaged; rank 0 alone writes checkpoints, the log and the model.
    std::shared_ptr<Communicator> comm;
};
struct TrainSummary {
    int64_t start_step = 0, end_step = 0;
    std::vector<double> losses;  // per step of this invocation
    bool stopped = false;        // by a callback before the last step
    std::string final_model;     // out_dir/model.safetensors (only when the run finished)
    // the precision trained with (resolved: Fp32 or Bf16)
    TrainPrecision precision = TrainPrecision::Fp32;
};
// Trains `model` on windows of `data`. Token ids must be < the model's
// vocabulary (checked up front).
TrainSummary train_language_model(Model& model, const TokenSource& data, const LmTrainConfig& config,
                                  const TrainCallbacks& callbacks = {});

// Mean loss (nats/token) of the model over consecutive windows of the data (no
// shuffling), at most max_tokens.
struct EvalResult {
    double loss = 0;     // mean nats per target token
    int64_t tokens = 0;  // target tokens scored: stream positions [1, tokens + 1)
};
EvalResult evaluate_language_model(Model& model, const TokenSource& data, int64_t ctx_len, int64_t max_tokens);

}  // namespace aviary
