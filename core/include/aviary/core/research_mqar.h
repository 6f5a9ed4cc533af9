// Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology", the task of the Eagle/Finch paper's
// Figure 4) and the experiment that trains RWKV-4, Eagle and Finch on it at several widths and lengths.
// A sequence is n key–value pairs, then a query section of the same pairs in a new order at random positions
// among padding (token 0); the model must give each value right after its key in the query section. Keys come
// from [1, V/2), values from [V/2, V), both without repetition; every key appears once in the pairs and once
// as a query.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aviary/core/trainer.h"

namespace aviary {

struct MqarOptions {
    int64_t vocab = 512;   // V (even, ≥ 8)
    int64_t seq_len = 64;  // T of the input (the model sees T tokens, predicts T targets)
    int64_t pairs = 8;     // n key–value pairs (2n ≤ T/2 so the query section fits them)
};

struct MqarBatch {
    at::Tensor inputs;   // (B, T) int64
    at::Tensor targets;  // (B, T) int64: the next token
    at::Tensor mask;     // (B, T) float: 1 where the target is a queried value (n per row), else 0
};

// Rows are a function of (seed, first_row + b) only, so any slice of a data stream can be regenerated.
MqarBatch make_mqar_batch(const MqarOptions& options, int64_t batch, uint64_t seed, int64_t first_row = 0);

struct MqarRunOptions {
    MqarOptions task;
    int version = 6;  // 4, 5 or 6
    int64_t n_layer = 2;
    int64_t n_embd = 64;
    int64_t steps = 400;
    int64_t batch = 32;
    double lr = 1e-3;
    int64_t eval_rows = 256;  // held-out rows (another seed)
    uint64_t seed = 1;
    std::string device = "cpu";                       // "cpu" or "cuda"
    TrainPrecision precision = TrainPrecision::Auto;  // trainer.h: bf16 autocast where the CPU has AMX-BF16
};
struct MqarRunResult {
    double accuracy = 0;         // exact value predictions (arg-max) over all queries of the held-out rows
    double final_loss = 0;       // training loss of the last step
    std::vector<double> losses;  // per step
    double seconds = 0;
    int64_t n_params = 0;
};
// Trains a fresh model (official init) with the shared Trainer on freshly generated batches (masked loss on the
// queried values) and evaluates it. on_progress(step, steps, loss) may return false to stop early.
MqarRunResult run_mqar(const MqarRunOptions& options,
                       const std::function<bool(int64_t, int64_t, double)>& on_progress = {});

}  // namespace aviary
