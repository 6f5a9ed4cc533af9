// The token-LM training loop (trainer.h `train_language_model`) and evaluation:
// windows from the seeded sampler, sequence-mode forward from a zero state,
// masked CE (+ L2Wrap), checkpoints every N steps and on stop, one JSONL line
// per step in OUT/train_log.jsonl (step, loss, lr, tokens, tokens_per_s,
// elapsed), the final weights as OUT/model.safetensors with the official key
// names.
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/trainer.h"

namespace aviary {
namespace fs = std::filesystem;
namespace {

// Keeps the log lines of steps <= last_step (the ones a resumed run does not
// repeat).
void trim_log(const fs::path &log, int64_t last_step) {
  if (!fs::exists(log))
    return;
  std::ifstream in(log);
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") &&
        j["step"].get<int64_t>() <= last_step)
      kept << line << "\n";
  }
  in.close();
  const fs::path tmp = log.string() + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << kept.str();
  fs::rename(tmp, log);
}

} // namespace

TrainSummary train_language_model(Model &model, const TokenSource &data,
                                  const LmTrainConfig &config,
                                  const TrainCallbacks &cb) {
  const TrainOptions &o = config.train;
  const int64_t V = model.config().vocab_size;
  AVIARY_CHECK(data.max_token() < V, "training data ", data.describe(),
               " contains token id ", data.max_token(),
               " but the model's vocabulary has ", V,
               " ids (data built with another tokenizer?)");
  AVIARY_CHECK(!config.out_dir.empty(), "an output directory is required");
  fs::create_directories(config.out_dir);

  model.train(true);
  Trainer trainer(model.state_dict(), o);
  WindowSampler sampler(data, o.ctx_len, o.seed);

  TrainSummary summary;
  int64_t position = 0;
  double elapsed_before = 0;
  if (config.resume) {
    const std::string latest = latest_train_checkpoint(config.out_dir);
    if (!latest.empty()) {
      CheckpointInfo info = load_train_checkpoint(latest, model, trainer);
      position = info.data_position;
      elapsed_before = info.elapsed_s;
      summary.start_step = info.step;
    }
  }
  const fs::path log_path = fs::path(config.out_dir) / "train_log.jsonl";
  if (summary.start_step > 0)
    trim_log(log_path, summary.start_step);
  else
    std::ofstream(log_path, std::ios::trunc).close();
  std::ofstream log(log_path, std::ios::app);
  AVIARY_CHECK(log.good(), "cannot write '", log_path.string(), "'");

  const int64_t tokens_per_step = o.batch * o.ctx_len * o.grad_accum;
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - t_start)
                                .count();
  };
  double last_loss = 0;
  auto save = [&](int64_t step) {
    CheckpointInfo info;
    info.step = step;
    info.data_position = position;
    info.loss = last_loss;
    info.elapsed_s = elapsed();
    save_train_checkpoint(config.out_dir, model, trainer, info,
                          config.keep_last);
    if (cb.on_checkpoint)
      cb.on_checkpoint(latest_train_checkpoint(config.out_dir));
  };

  int64_t step = summary.start_step;
  while (step < o.steps) {
    if (cb.should_stop && cb.should_stop()) {
      save(step);
      summary.stopped = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    StepResult r = trainer.step([&](int64_t) {
      at::Tensor w = sampler.windows(position, o.batch); // (B, T + 1)
      position += o.batch;
      at::Tensor x = w.narrow(1, 0, o.ctx_len), y = w.narrow(1, 1, o.ctx_len);
      State state = model.new_state(o.batch);
      at::Tensor logits =
          model.forward(x, state, /*all_logits=*/true); // (B, T, V)
      return lm_loss(logits, y, at::Tensor(), o.l2wrap);
    });
    ++step;
    last_loss = r.loss;
    summary.losses.push_back(r.loss);
    const double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
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
    log << j.dump() << "\n";
    log.flush();
    const bool go_on = !cb.on_progress || cb.on_progress(p);
    if (!go_on) {
      save(step);
      summary.stopped = true;
      break;
    }
    if (config.save_every > 0 && step % config.save_every == 0 &&
        step < o.steps)
      save(step);
  }
  summary.end_step = step;
  if (!summary.stopped) {
    save(step);
    summary.final_model =
        (fs::path(config.out_dir) / "model.safetensors").string();
    TensorList weights;
    for (const auto &nt : model.state_dict())
      weights.push_back({nt.name, nt.tensor.detach()});
    write_safetensors(summary.final_model, weights, {{"format", "pt"}});
  }
  model.train(false);
  return summary;
}

EvalResult evaluate_language_model(Model &model, const TokenSource &data,
                                   int64_t ctx_len, int64_t max_tokens) {
  AVIARY_CHECK(ctx_len >= 1, "ctx_len must be >= 1");
  AVIARY_CHECK(data.size() >= 2, "evaluation data ", data.describe(),
               " has fewer than 2 tokens");
  const int64_t V = model.config().vocab_size;
  AVIARY_CHECK(data.max_token() < V, "evaluation data ", data.describe(),
               " contains token id ", data.max_token(),
               " but the model's vocabulary has ", V,
               " ids (data built with another tokenizer?)");
  const bool was_training = model.is_training();
  model.train(false);
  int64_t limit = data.size() - 1;
  if (max_tokens > 0)
    limit = std::min(limit, max_tokens);
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
    at::Tensor logits =
        model.forward(w.narrow(1, 0, T), state, true); // (1, T, V)
    at::Tensor lp = at::log_softmax(logits.reshape({T, V}), -1);
    total -= lp.gather(1, w.narrow(1, 1, T).reshape({T, 1}).to(lp.device()))
                 .sum()
                 .item<double>();
    done += T;
  }
  model.train(was_training);
  return {total / double(done), done};
}

} // namespace aviary
