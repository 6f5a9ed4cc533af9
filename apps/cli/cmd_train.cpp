// `aviary train text --data D --model (init:L,D,VERSION | CHECKPOINT) --out DIR
// [--resume] [...]`: trains with the core Trainer (trainer.h): a progress bar
// on stderr (step, loss, tok/s, ETA), OUT/train_log.jsonl per step, checkpoints
// in OUT/checkpoints, the final weights as OUT/model.safetensors (official
// keys). Ctrl-C saves a checkpoint and stops; `--resume` continues bit-exactly.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/error.h"
#include "aviary/core/model_init.h"
#include "aviary/core/threads.h"
#include "aviary/core/trainer.h"
#include "cli_common.h"
#include "progress_bar.h"

namespace aviary::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

// "init:L,D,VERSION" -> (L, D, version); throws UsageError on malformed specs.
bool parse_init_spec(const std::string &spec, int &L, int &D, int &version) {
  if (spec.rfind("init:", 0) != 0)
    return false;
  int consumed = 0;
  if (std::sscanf(spec.c_str() + 5, "%d,%d,%d%n", &L, &D, &version,
                  &consumed) != 3 ||
      spec.size() != size_t(5 + consumed))
    throw UsageError("--model '" + spec +
                     "': expected init:N_LAYER,N_EMBD,VERSION (e.g. "
                     "init:2,64,6) or a checkpoint");
  if (version != 5 && version != 6)
    throw UsageError("--model '" + spec + "': version must be 5 or 6");
  return true;
}

} // namespace

void register_train(CLI::App &app, Runner &run) {
  auto *tr = app.add_subcommand("train", "Train a model");
  tr->require_subcommand(1);
  auto *sub =
      tr->add_subcommand("text", "Train or fine-tune a language model on text");
  struct Args {
    ModelArgs model;
    std::string data, out, tokenizer = "world", vocab;
    bool resume = false, no_l2wrap = false, quiet = false;
    TrainOptions train;
    int64_t save_every = 0;
    int keep_last = 2;
  };
  auto a = std::make_shared<Args>();
  add_model_options(sub, a->model);
  sub->get_option("--model")->description(
      "init:N_LAYER,N_EMBD,VERSION (official init) or a checkpoint to "
      "fine-tune");
  sub->add_option("--data", a->data,
                  "binidx prefix, .jsonl, text file or directory")
      ->required();
  sub->add_option(
         "--out", a->out,
         "Output directory (checkpoints/, train_log.jsonl, model.safetensors)")
      ->required();
  sub->add_flag("--resume", a->resume,
                "Continue from the newest checkpoint in --out");
  sub->add_option("--tokenizer", a->tokenizer, "world (default) or byte")
      ->check(CLI::IsMember({"world", "byte"}));
  add_vocab_option(sub, a->vocab);
  sub->add_option("--steps", a->train.steps, "Optimizer steps")
      ->check(CLI::PositiveNumber);
  sub->add_option("--ctx-len", a->train.ctx_len, "Tokens per sequence")
      ->check(CLI::PositiveNumber);
  sub->add_option("--batch", a->train.batch, "Sequences per micro-batch")
      ->check(CLI::PositiveNumber);
  sub->add_option("--grad-accum", a->train.grad_accum, "Micro-batches per step")
      ->check(CLI::PositiveNumber);
  sub->add_option("--lr", a->train.lr, "Initial learning rate (after warm-up)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--lr-final", a->train.lr_final,
                  "Final learning rate (cosine)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--warmup", a->train.warmup, "Warm-up steps")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--weight-decay", a->train.weight_decay,
                  "AdamW weight decay on matrices and embeddings")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--grad-clip", a->train.grad_clip,
                  "Max gradient norm (0: off)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--freeze", a->train.freeze,
                  "Freeze parameters whose name matches a glob (repeatable)");
  sub->add_flag("--no-l2wrap", a->no_l2wrap,
                "Disable the L2Wrap logit penalty");
  sub->add_option("--seed", a->train.seed,
                  "Seed of the init and the data order");
  sub->add_option("--save-every", a->save_every,
                  "Checkpoint every N steps (0: only at the end / on stop)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--keep-last", a->keep_last,
                  "Checkpoints kept besides the best")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--quiet,-q", a->quiet, "No progress bar");
  sub->callback([&run, a] {
    run = [a] {
      namespace fs = std::filesystem;
      a->train.l2wrap = !a->no_l2wrap;
      const bool has_checkpoints = !latest_train_checkpoint(a->out).empty();
      if (has_checkpoints && !a->resume)
        throw UsageError(
            "'" + a->out +
            "' already holds checkpoints: add --resume to continue, or choose "
            "another --out");
      TextEncoder enc = make_text_encoder(a->tokenizer, a->vocab);
      auto data = open_token_source(a->data, enc);
      set_thread_count(a->model.threads);
      int L = 0, D = 0, version = 0;
      Model model;
      ModelOptions mo;
      mo.device = a->model.device;
      if (parse_init_spec(a->model.model, L, D, version)) {
        model = Model::from_tensors(
            init_weights(init_config(L, D, version, enc.vocab_size),
                         a->train.seed),
            mo);
      } else {
        AVIARY_CHECK(
            a->model.dtype == "fp32",
            "training needs --dtype fp32 weights (bf16 training is not "
            "supported on this path)");
        model = Model::load(a->model.model, mo);
      }
      LmTrainConfig cfg;
      cfg.train = a->train;
      cfg.out_dir = a->out;
      cfg.resume = a->resume;
      cfg.save_every = a->save_every;
      cfg.keep_last = a->keep_last;
      ProgressBar bar(!a->quiet);
      double tok_s_avg = 0;
      int64_t n = 0;
      TrainCallbacks cb;
      cb.on_progress = [&](const TrainProgress &p) {
        tok_s_avg += p.tokens_per_s, ++n;
        char text[160];
        std::snprintf(
            text, sizeof text, "step %lld/%lld loss %.4f lr %.2e %.0f tok/s",
            static_cast<long long>(p.step), static_cast<long long>(p.total),
            p.loss, p.lr, p.tokens_per_s);
        bar.update(double(p.step), double(p.total), text);
        return true;
      };
      g_interrupted = 0;
      auto previous = std::signal(SIGINT, on_sigint);
      cb.should_stop = [] { return g_interrupted != 0; };
      TrainSummary s;
      try {
        s = train_language_model(model, *data, cfg, cb);
      } catch (...) {
        std::signal(SIGINT, previous);
        bar.finish();
        throw;
      }
      std::signal(SIGINT, previous);
      bar.finish();
      nlohmann::json j;
      j["start_step"] = s.start_step;
      j["end_step"] = s.end_step;
      j["final_loss"] = s.losses.empty() ? 0.0 : s.losses.back();
      j["tokens_per_s"] = n > 0 ? tok_s_avg / double(n) : 0.0;
      j["stopped"] = s.stopped;
      j["model"] = s.final_model;
      j["checkpoint"] = latest_train_checkpoint(a->out);
      j["log"] = (fs::path(a->out) / "train_log.jsonl").string();
      std::printf("%s\n", j.dump().c_str());
      return 0;
    };
  });
}

} // namespace aviary::cli
