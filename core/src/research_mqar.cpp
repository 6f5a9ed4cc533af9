// MQAR data and one training run (research_mqar.h). Generation follows the task's definition in Zoology
// (arXiv 2312.04927, §3 and its synthetic data code: key–value pairs, then the queries at random positions):
// written from that description, with query positions drawn uniformly rather than from a power law.
#include "aviary/core/research_mqar.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <numeric>
#include <random>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/trainer.h"

namespace aviary {

MqarBatch make_mqar_batch(const MqarOptions& o, int64_t batch, uint64_t seed, int64_t first_row) {
    AVIARY_CHECK(o.vocab >= 8 && o.vocab % 2 == 0, "MQAR vocabulary must be even and >= 8, got ", o.vocab);
    AVIARY_CHECK(o.pairs >= 1 && o.pairs < o.vocab / 2, "MQAR needs 1 <= pairs < vocab/2 distinct keys, got ", o.pairs);
    AVIARY_CHECK(4 * o.pairs <= o.seq_len, "MQAR sequence length ", o.seq_len, " is too short for ", o.pairs,
                 " pairs (needs 4 x pairs: the pairs, then the queries with their values)");
    AVIARY_CHECK(batch >= 1, "MQAR batch must be >= 1");
    const int64_t T = o.seq_len, n = o.pairs, half = o.vocab / 2;
    // One extra token so that targets are the next token of a (T + 1)-long row.
    at::Tensor rows = torch::zeros({batch, T + 1}, torch::kLong);
    at::Tensor mask = torch::zeros({batch, T}, torch::kFloat);
    auto r = rows.accessor<int64_t, 2>();
    auto m = mask.accessor<float, 2>();
    for (int64_t b = 0; b < batch; ++b) {
        std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(first_row + b));
        // keys: n distinct from [1, half)
        std::vector<int64_t> keys(size_t(half - 1));
        std::iota(keys.begin(), keys.end(), 1);
        std::shuffle(keys.begin(), keys.end(), rng);
        keys.resize(size_t(n));
        // values: n distinct from [half, V), so a value seen in the query section always belongs to its own key
        std::vector<int64_t> values(static_cast<size_t>(o.vocab - half));
        std::iota(values.begin(), values.end(), half);
        std::shuffle(values.begin(), values.end(), rng);
        values.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) r[b][2 * i] = keys[size_t(i)], r[b][2 * i + 1] = values[size_t(i)];
        // queries: the n pairs in a new order, at n distinct slots of the query section [2n, T + 1) where a slot
        // holds "key value" (two tokens); slots are even offsets so queries never overlap.
        const int64_t slots = (T + 1 - 2 * n) / 2;
        std::vector<int64_t> slot(static_cast<size_t>(slots));
        std::iota(slot.begin(), slot.end(), 0);
        std::shuffle(slot.begin(), slot.end(), rng);
        slot.resize(size_t(n));
        std::vector<int64_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        for (int64_t q = 0; q < n; ++q) {
            const int64_t pos = 2 * n + 2 * slot[size_t(q)];  // key at pos, its value at pos + 1 (≤ T)
            r[b][pos] = keys[size_t(order[size_t(q)])];
            r[b][pos + 1] = values[size_t(order[size_t(q)])];
            m[b][pos] = 1.0f;  // input position pos predicts token pos + 1 = the value
        }
    }
    return {rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous(), mask};
}

MqarRunResult run_mqar(const MqarRunOptions& o, const std::function<bool(int64_t, int64_t, double)>& on_progress) {
    AVIARY_CHECK(o.steps >= 1 && o.batch >= 1 && o.eval_rows >= 1, "MQAR run needs steps, batch, eval_rows >= 1");
    const auto t0 = std::chrono::steady_clock::now();
    ModelOptions mo;
    mo.device = o.device;
    Model model = Model::from_tensors(
        init_weights(init_config(int(o.n_layer), int(o.n_embd), o.version, int(o.task.vocab)), o.seed), mo);
    model.train(true);
    TrainOptions to;
    to.steps = o.steps;
    to.batch = o.batch;
    to.ctx_len = o.task.seq_len;
    to.lr = o.lr;
    to.lr_final = o.lr / 10;
    to.warmup = std::min<int64_t>(20, o.steps / 10);
    to.l2wrap = false;
    to.seed = o.seed;
    to.precision = o.precision;
    Trainer trainer(model.state_dict(), to);
    MqarRunResult res;
    res.n_params = model.config().n_params;
    for (int64_t s = 0; s < o.steps; ++s) {
        MqarBatch b = make_mqar_batch(o.task, o.batch, o.seed, s * o.batch);
        StepResult st = trainer.step([&](int64_t) {
            State state = model.new_state(o.batch);
            at::Tensor logits = model.forward(b.inputs, state, true);
            return lm_loss(logits, b.targets, b.mask, false);
        });
        res.losses.push_back(st.loss);
        if (on_progress && !on_progress(s + 1, o.steps, st.loss)) break;
    }
    res.final_loss = res.losses.empty() ? 0 : res.losses.back();
    model.train(false);
    torch::NoGradGuard no_grad;
    int64_t correct = 0, total = 0;
    const uint64_t eval_seed = o.seed + 0x5EEDull;  // rows never seen in training
    for (int64_t done = 0; done < o.eval_rows; done += o.batch) {
        const int64_t nb = std::min(o.batch, o.eval_rows - done);
        MqarBatch b = make_mqar_batch(o.task, nb, eval_seed, done);
        State state = model.new_state(nb);
        at::Tensor pred = model.forward(b.inputs, state, true).argmax(-1);
        at::Tensor hit = (pred.cpu() == b.targets).to(at::kFloat) * b.mask;
        correct += int64_t(hit.sum().item<double>() + 0.5);
        total += int64_t(b.mask.sum().item<double>() + 0.5);
    }
    res.accuracy = total ? double(correct) / double(total) : 0.0;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace aviary
