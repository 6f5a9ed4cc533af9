// The token-LM training loop (trainer.h `train_language_model`) and evaluation:
// windows from the seeded sampler, sequence-mode forward from a zero state,
// masked CE (+ L2Wrap), checkpoints every N steps and on stop, one JSONL line
// per step in OUT/train_log.jsonl (step, loss, lr, tokens, tokens_per_s,
// elapsed), the final weights as OUT/model.safetensors with the official key
// names. LoRA / state tuning set up the model first; with a Communicator each
// rank trains on its shard of every global batch and rank 0 writes the files.
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aviary/core/distributed.h"
#include "aviary/core/error.h"
#include "aviary/core/trainer.h"

namespace aviary {
namespace fs = std::filesystem;
TrainSummary train_language_model(Model& model, const TokenSource& data, const LmTrainConfig& config,
                                  const TrainCallbacks& cb) {
    const TrainOptions& o = config.train;
    const int64_t V = model.config().vocab_size;
    AVIARY_CHECK(data.max_token() < V, "training data ", data.describe(), " contains token id ", data.max_token(),
                 " but the model's vocabulary has ", V, " ids (data built with another tokenizer?)");
    AVIARY_CHECK(!config.out_dir.empty(), "an output directory is required");
    const int rank = config.comm ? config.comm->rank() : 0;
    const int world = config.comm ? config.comm->world_size() : 1;
    const bool writer = rank == 0;  // the rank that writes checkpoints and logs
    if (writer) {
        fs::create_directories(config.out_dir);
        clear_interrupted_writes(config.out_dir);
    }

    model.train(true);
    TrainOptions topt = o;
    AVIARY_CHECK(!(config.lora && config.train_state), "LoRA and state tuning are separate modes: choose one");
    if (config.lora && !model.has_lora()) model.add_lora(config.lora_options);
    if (config.train_state) model.add_time_state();
    if (topt.train_only.empty() && model.has_lora()) topt.train_only = {"*.lora_A.weight", "*.lora_B.weight"};
    if (topt.train_only.empty() && config.train_state) topt.train_only = {"*.att.time_state"};
    Trainer trainer(model.state_dict(), topt);
    trainer.set_communicator(config.comm);
    WindowSampler sampler(data, o.ctx_len, o.seed);

    TrainSummary summary;
    summary.precision = trainer.options().precision;
    int64_t position = 0;
    double elapsed_before = 0;
    seed_training_rng(o.seed);  // a checkpoint's RNG state replaces it below
    if (config.resume) {
        const std::string latest = latest_train_checkpoint(config.out_dir);
        if (!latest.empty()) {
            CheckpointInfo info = load_train_checkpoint(latest, model, trainer);
            position = info.data_position;
            elapsed_before = info.elapsed_s;
            summary.start_step = info.step;
        }
    }
    if (config.comm) {
        // Same starting weights everywhere (as DDP does), whatever each rank
        // loaded; this also waits until every rank has read its checkpoint, before
        // rank 0 can write a new one.
        std::vector<at::Tensor> all;
        for (const auto& nt : model.state_dict()) all.push_back(nt.tensor);
        config.comm->broadcast(all, 0);
    }
    const fs::path log_path = fs::path(config.out_dir) / "train_log.jsonl";
    std::ofstream log;
    if (writer) {
        restart_train_log(log_path.string(), summary.start_step);
        log.open(log_path, std::ios::app);
        AVIARY_CHECK(log.good(), "cannot write '", log_path.string(), "'");
    }
    // Every rank stops at the same step when any rank is asked to.
    auto agree = [&](bool stop) { return config.comm ? config.comm->any(stop) : stop; };

    const int64_t tokens_per_step = o.batch * int64_t(world) * o.ctx_len * o.grad_accum;
    const auto t_start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    };
    double last_loss = 0;
    auto save = [&](int64_t step) {
        if (!writer) return;
        CheckpointInfo info;
        info.step = step;
        info.data_position = position;
        info.loss = last_loss;
        info.elapsed_s = elapsed();
        save_train_checkpoint(config.out_dir, model, trainer, info, config.keep_last);
        if (cb.on_checkpoint) cb.on_checkpoint(latest_train_checkpoint(config.out_dir));
    };

    int64_t step = summary.start_step;
    while (step < o.steps) {
        if (agree(cb.should_stop && cb.should_stop())) {
            save(step);
            summary.stopped = true;
            break;
        }
        const auto t0 = std::chrono::steady_clock::now();
        StepResult r = trainer.step([&](int64_t) {
            // this rank's rows of the global micro-batch    (B, T + 1)
            at::Tensor w = sampler.windows(position + rank * o.batch, o.batch);
            position += o.batch * world;
            at::Tensor x = w.narrow(1, 0, o.ctx_len), y = w.narrow(1, 1, o.ctx_len);
            State state = model.new_state(o.batch);
            at::Tensor logits = model.forward(x, state, /*all_logits=*/true);  // (B, T, V)
            return lm_loss(logits, y, at::Tensor(), o.l2wrap);
        });
        ++step;
        last_loss = r.loss;
        summary.losses.push_back(r.loss);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        TrainProgress p;
        p.step = step;
        p.total = o.steps;
        p.loss = r.loss;
        p.lr = r.lr;
        p.grad_norm = r.grad_norm;
        p.tokens = step * tokens_per_step;
        p.tokens_per_s = dt > 0 ? double(tokens_per_step) / dt : 0;
        p.elapsed_s = elapsed();
        nlohmann::json j;
        j["step"] = p.step;
        j["loss"] = p.loss;
        j["lr"] = p.lr;
        j["grad_norm"] = p.grad_norm;
        j["tokens"] = p.tokens;
        j["tokens_per_s"] = p.tokens_per_s;
        j["elapsed"] = p.elapsed_s;
        if (writer) {
            log << j.dump() << "\n";
            log.flush();
        }
        const bool asked_to_stop = cb.on_progress && !cb.on_progress(p);
        const bool go_on = !agree(asked_to_stop);
        if (!go_on) {
            save(step);
            summary.stopped = true;
            break;
        }
        if (config.save_every > 0 && step % config.save_every == 0 && step < o.steps) save(step);
    }
    summary.end_step = step;
    if (!summary.stopped) {
        save(step);
        summary.final_model = (fs::path(config.out_dir) / "model.safetensors").string();
        if (writer) {
            // Official keys, LoRA merged (Model::export_state_dict).
            write_safetensors(summary.final_model, model.export_state_dict(), {{"format", "pt"}});
            if (model.has_lora()) {
                const LoraOptions& lo = model.lora_options();
                std::string targets;
                for (const auto& t : lo.targets) targets += (targets.empty() ? "" : ",") + t;
                TensorList adapters;
                for (const auto& nt : model.lora_state_dict()) adapters.push_back({nt.name, nt.tensor.detach()});
                write_safetensors((fs::path(config.out_dir) / "lora.safetensors").string(), adapters,
                                  {{"format", "pt"},
                                   {"lora_rank", std::to_string(lo.rank)},
                                   {"lora_alpha", std::to_string(lo.alpha)},
                                   {"lora_targets", targets}});
            }
        }
    }
    model.train(false);
    return summary;
}

EvalResult evaluate_language_model(Model& model, const TokenSource& data, int64_t ctx_len, int64_t max_tokens) {
    AVIARY_CHECK(ctx_len >= 1, "ctx_len must be >= 1");
    AVIARY_CHECK(data.size() >= 2, "evaluation data ", data.describe(), " has fewer than 2 tokens");
    const int64_t V = model.config().vocab_size;
    AVIARY_CHECK(data.max_token() < V, "evaluation data ", data.describe(), " contains token id ", data.max_token(),
                 " but the model's vocabulary has ", V, " ids (data built with another tokenizer?)");
    const bool was_training = model.is_training();
    model.train(false);
    int64_t limit = data.size() - 1;
    if (max_tokens > 0) limit = std::min(limit, max_tokens);
    // Consecutive windows carrying the state across them: exactly the loss of one
    // long sequence.
    State state = model.new_state(1);
    double total = 0;
    int64_t done = 0;
    std::vector<int64_t> buf;
    while (done < limit) {
        const int64_t T = std::min(ctx_len, limit - done);
        buf.resize(size_t(T + 1));
        data.read(done, T + 1, buf.data());
        at::Tensor w = at::from_blob(buf.data(), {1, T + 1}, at::kLong).clone();
        at::Tensor logits = model.forward(w.narrow(1, 0, T), state, true);  // (1, T, V)
        at::Tensor lp = at::log_softmax(logits.reshape({T, V}), -1);
        total -= lp.gather(1, w.narrow(1, 1, T).reshape({T, 1}).to(lp.device())).sum().item<double>();
        done += T;
    }
    model.train(was_training);
    return {total / double(done), done};
}

}  // namespace aviary
