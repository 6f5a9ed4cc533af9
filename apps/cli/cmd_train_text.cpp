// `aviary train text --data D --model (init:L,D,VERSION | CHECKPOINT) --out DIR
// [--resume] [...]`: trains with the core Trainer (trainer.h): a progress bar
// on stderr (step, loss, tok/s, ETA), OUT/train_log.jsonl per step, checkpoints
// in OUT/checkpoints, the final weights as OUT/model.safetensors (official
// keys). Ctrl-C saves a checkpoint and stops; `--resume` continues bit-exactly.
// `--lora`/`--train-state` choose the fine-tuning mode; `--nproc N` or a
// torchrun-style environment (WORLD_SIZE > 1) trains data-parallel over c10d.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/distributed.h"
#include "aviary/core/error.h"
#include "aviary/core/model_init.h"
#include "aviary/core/threads.h"
#include "aviary/core/trainer.h"
#include "cli_common.h"
#include "launch_workers.h"
#include "progress_bar.h"

namespace aviary::cli {
namespace {

// "a,b,,c" -> {"a", "b", "c"}
std::vector<std::string> split_patterns(const std::string& list) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) out.push_back(list.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) {
    g_interrupted = 1;
}

// "init:L,D,VERSION" -> (L, D, version); throws UsageError on malformed specs.
bool parse_init_spec(const std::string& spec, int& L, int& D, int& version) {
    if (spec.rfind("init:", 0) != 0) return false;
    int consumed = 0;
    if (std::sscanf(spec.c_str() + 5, "%d,%d,%d%n", &L, &D, &version, &consumed) != 3 ||
        spec.size() != size_t(5 + consumed))
        throw UsageError("--model '" + spec +
                         "': expected init:N_LAYER,N_EMBD,VERSION (e.g. "
                         "init:2,64,6) or a checkpoint");
    if (version < 4 || version > 6) throw UsageError("--model '" + spec + "': version must be 4, 5 or 6");
    return true;
}

// "--lora RANK[:ALPHA][:PATTERN[,PATTERN…]]" into `o` (alpha defaults to
// 2·rank).
void parse_lora_spec(const std::string& spec, LoraOptions& o) {
    const auto bad = [&] {
        return UsageError("--lora '" + spec +
                          "': expected RANK[:ALPHA][:PATTERNS], e.g. 8, 8:16 or "
                          "8:16:att.*,ffn.key");
    };
    std::vector<std::string> parts;
    size_t start = 0;
    for (int i = 0; i < 2; ++i) {  // at most 3 parts; patterns hold no ':'
        const size_t colon = spec.find(':', start);
        if (colon == std::string::npos) break;
        parts.push_back(spec.substr(start, colon - start));
        start = colon + 1;
    }
    parts.push_back(spec.substr(start));
    try {
        size_t used = 0;
        o.rank = std::stoll(parts[0], &used);
        if (used != parts[0].size() || o.rank < 1) throw bad();
        o.alpha = 2.0 * double(o.rank);
        if (parts.size() > 1 && !parts[1].empty()) {
            o.alpha = std::stod(parts[1], &used);
            if (used != parts[1].size() || !(o.alpha > 0)) throw bad();
        }
    } catch (const std::logic_error&) {
        throw bad();
    }
    if (parts.size() > 2) o.targets = split_patterns(parts[2]);
}

}  // namespace

TrainSummary train_language_model_with_progress(Model& model, const TokenSource& data, const LmTrainConfig& config,
                                                bool show_progress, double* mean_tokens_per_s) {
    ProgressBar bar(show_progress);
    double tok_s_sum = 0;
    int64_t n = 0;
    TrainCallbacks cb;
    cb.on_progress = [&](const TrainProgress& p) {
        tok_s_sum += p.tokens_per_s, ++n;
        char text[160];
        std::snprintf(text, sizeof text, "step %lld/%lld loss %.4f lr %.2e %.0f tok/s", static_cast<long long>(p.step),
                      static_cast<long long>(p.total), p.loss, p.lr, p.tokens_per_s);
        bar.update(double(p.step), double(p.total), text);
        return true;
    };
    g_interrupted = 0;
    // Ctrl-C or SIGTERM (a batch system's time limit, `timeout`): the current step finishes, then a checkpoint
    // and the model are saved.
    auto previous = std::signal(SIGINT, on_sigint);
    auto previous_term = std::signal(SIGTERM, on_sigint);
    cb.should_stop = [] { return g_interrupted != 0; };
    TrainSummary s;
    try {
        s = train_language_model(model, data, config, cb);
    } catch (...) {
        std::signal(SIGINT, previous);
        std::signal(SIGTERM, previous_term);
        bar.finish();
        throw;
    }
    std::signal(SIGINT, previous);
    std::signal(SIGTERM, previous_term);
    bar.finish();
    if (mean_tokens_per_s) *mean_tokens_per_s = n > 0 ? tok_s_sum / double(n) : 0.0;
    return s;
}

void register_train(CLI::App& app, Runner& run) {
    auto* tr = app.add_subcommand("train", "Train a model");
    tr->require_subcommand(1);
    auto* sub = tr->add_subcommand("text", "Train or fine-tune a language model on text");
    struct Args {
        ModelArgs model;
        std::string data, out, tokenizer = "world", vocab;
        bool resume = false, no_l2wrap = false, quiet = false;
        TrainOptions train;
        int64_t save_every = 0;
        int keep_last = 2;
        std::string lora, lora_targets, dist_backend = "auto";
        int64_t lora_rank = 0;
        double lora_alpha = 0;
        bool train_state = false;
        int nproc = 1;
        std::string ablate;
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model);
    sub->get_option("--model")->description(
        "init:N_LAYER,N_EMBD,VERSION (official init) or a checkpoint to "
        "fine-tune");
    sub->add_option("--data", a->data, "binidx prefix, .jsonl, text file or directory")->required();
    sub->add_option("--out", a->out, "Output directory (checkpoints/, train_log.jsonl, model.safetensors)")->required();
    sub->add_flag("--resume", a->resume, "Continue from the newest checkpoint in --out");
    sub->add_option("--tokenizer", a->tokenizer, "world (default) or byte")->check(CLI::IsMember({"world", "byte"}));
    add_vocab_option(sub, a->vocab);
    sub->add_option("--steps", a->train.steps, "Optimizer steps")->check(CLI::PositiveNumber);
    sub->add_option("--ctx-len", a->train.ctx_len, "Tokens per sequence")->check(CLI::PositiveNumber);
    sub->add_option("--batch", a->train.batch, "Sequences per micro-batch")->check(CLI::PositiveNumber);
    sub->add_option("--grad-accum", a->train.grad_accum, "Micro-batches per step")->check(CLI::PositiveNumber);
    sub->add_option("--lr", a->train.lr, "Initial learning rate (after warm-up)")->check(CLI::PositiveNumber);
    sub->add_option("--lr-final", a->train.lr_final, "Final learning rate (cosine)")->check(CLI::NonNegativeNumber);
    sub->add_option("--warmup", a->train.warmup, "Warm-up steps")->check(CLI::NonNegativeNumber);
    sub->add_option("--weight-decay", a->train.weight_decay, "AdamW weight decay on matrices and embeddings")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--grad-clip", a->train.grad_clip, "Max gradient norm (0: off)")->check(CLI::NonNegativeNumber);
    sub->add_option("--freeze", a->train.freeze, "Freeze parameters whose name matches a glob (repeatable)");
    sub->add_flag("--no-l2wrap", a->no_l2wrap, "Disable the L2Wrap logit penalty");
    sub->add_option("--seed", a->train.seed, "Seed of the init and the data order");
    sub->add_option("--save-every", a->save_every, "Checkpoint every N steps (0: only at the end / on stop)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--keep-last", a->keep_last, "Checkpoints kept besides the best")->check(CLI::PositiveNumber);
    sub->add_flag("--quiet,-q", a->quiet, "No progress bar");
    sub->add_option("--train-only", a->train.train_only,
                    "Train only parameters matching a glob (repeatable); the "
                    "rest is frozen");
    sub->add_option("--lora", a->lora,
                    "LoRA adapters: RANK[:ALPHA][:PATTERNS] (alpha default "
                    "2*rank; patterns like att.key,ffn.*)");
    sub->add_option("--lora-rank", a->lora_rank, "LoRA rank (same as --lora)")->check(CLI::PositiveNumber);
    sub->add_option("--lora-alpha", a->lora_alpha, "LoRA alpha: the update is scaled by alpha/rank")
        ->check(CLI::PositiveNumber);
    sub->add_option("--lora-targets", a->lora_targets,
                    "Comma-separated matrix globs (default "
                    "att.receptance,att.key,att.value,att.output,att.gate,ffn.*)");
    sub->add_flag("--train-state", a->train_state,
                  "State tuning: train only an initial state per layer, saved "
                  "as blocks.N.att.time_state");
    sub->add_option("--nproc", a->nproc,
                    "Data-parallel over N local worker processes (c10d; global "
                    "batch = N x --batch)")
        ->check(CLI::PositiveNumber);
    sub->add_option("--ablate", a->ablate,
                    "Finch ablations of the paper's Table 19 (with --model init:…,6): dd-token-shift (static token "
                    "shift: time_maa_w1/w2 held at zero/init), dd-decay (static decay: time_decay_w1/w2), or both, "
                    "comma-separated");
    sub->add_option("--dist-backend", a->dist_backend, "c10d backend of multi-process training: auto, gloo, nccl")
        ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
    add_precision_option(sub, a->train.precision);
    sub->callback([&run, a] {
        run = [a] {
            namespace fs = std::filesystem;
            const DistributedEnv denv = distributed_env_from_environment();
            if (a->nproc > 1) {
                if (denv.active())
                    throw UsageError(
                        "--nproc starts its own workers: do not combine "
                        "it with WORLD_SIZE > 1 (torchrun/Slurm)");
                if (!latest_train_checkpoint(a->out).empty() && !a->resume)
                    throw UsageError("'" + a->out +
                                     "' already holds checkpoints: add --resume to "
                                     "continue, or choose another --out");
                return launch_local_workers(a->nproc, command_line_without_nproc());
            }
            a->train.l2wrap = !a->no_l2wrap;
            LmTrainConfig cfg;
            if (!a->lora.empty()) parse_lora_spec(a->lora, cfg.lora_options);
            if (a->lora_rank > 0) {
                if (a->lora.empty()) cfg.lora_options.alpha = 2.0 * double(a->lora_rank);
                cfg.lora_options.rank = a->lora_rank;
            }
            if (a->lora_alpha > 0) cfg.lora_options.alpha = a->lora_alpha;
            if (!a->lora_targets.empty()) cfg.lora_options.targets = split_patterns(a->lora_targets);
            cfg.lora_options.seed = a->train.seed;
            cfg.lora = !a->lora.empty() || a->lora_rank > 0 || a->lora_alpha > 0 || !a->lora_targets.empty();
            if (cfg.lora && a->lora.empty() && a->lora_rank == 0)
                throw UsageError(
                    "--lora-alpha/--lora-targets need --lora-rank or "
                    "--lora");
            if (cfg.lora && a->train_state)
                throw UsageError(
                    "--lora and --train-state are separate modes: "
                    "choose one");
            cfg.train_state = a->train_state;
            const bool has_checkpoints = !latest_train_checkpoint(a->out).empty();
            if (has_checkpoints && !a->resume)
                throw UsageError("'" + a->out +
                                 "' already holds checkpoints: add --resume to continue, or choose "
                                 "another --out");
            TextEncoder enc = make_text_encoder(a->tokenizer, a->vocab);
            auto data = open_token_source(a->data, enc);
            int threads = a->model.threads;
            if (threads <= 0 && denv.active()) {
                // Share the cores among the local workers unless told otherwise.
                const char* local = std::getenv("LOCAL_WORLD_SIZE");
                const int n = local ? std::max(1, std::atoi(local)) : 1;
                threads = std::max(1, default_thread_count() / n);
            }
            set_thread_count(threads);
            int L = 0, D = 0, version = 0;
            Model model;
            ModelOptions mo;
            mo.device = a->model.device;
            // Ablations freeze the data-dependent LoRAs of Finch at their official init (the down-projection w1 is
            // zero there, so tanh(x·w1)·w2 = 0 and the token shift / decay stay static for the whole run).
            std::vector<std::string> ablate_globs;
            for (const auto& item : split_patterns(a->ablate)) {
                if (item == "dd-token-shift")
                    ablate_globs.insert(ablate_globs.end(), {"blocks.*.att.time_maa_w1", "blocks.*.att.time_maa_w2"});
                else if (item == "dd-decay")
                    ablate_globs.insert(ablate_globs.end(),
                                        {"blocks.*.att.time_decay_w1", "blocks.*.att.time_decay_w2"});
                else
                    throw UsageError("--ablate: unknown ablation '" + item + "' (expected dd-token-shift, dd-decay)");
            }
            if (!ablate_globs.empty()) {
                if (!parse_init_spec(a->model.model, L, D, version) || version != 6)
                    throw UsageError(
                        "--ablate needs a Finch model trained from scratch: --model init:N_LAYER,N_EMBD,6");
                a->train.freeze.insert(a->train.freeze.end(), ablate_globs.begin(), ablate_globs.end());
            }
            if (parse_init_spec(a->model.model, L, D, version)) {
                model =
                    Model::from_tensors(init_weights(init_config(L, D, version, enc.vocab_size), a->train.seed), mo);
            } else {
                AVIARY_CHECK(a->model.dtype == "fp32",
                             "training needs --dtype fp32 weights (bf16 training is not "
                             "supported on this path)");
                model = Model::load(a->model.model, mo);
            }
            if (denv.active()) cfg.comm = Communicator::connect(denv, a->dist_backend, a->model.device);
            const bool writer = denv.rank == 0;
            cfg.train = a->train;
            cfg.out_dir = a->out;
            cfg.resume = a->resume;
            cfg.save_every = a->save_every;
            cfg.keep_last = a->keep_last;
            double mean_tok_s = 0;
            TrainSummary s = train_language_model_with_progress(model, *data, cfg, !a->quiet && writer, &mean_tok_s);
            if (!writer) return 0;  // rank 0 reports for the group
            nlohmann::json j;
            j["start_step"] = s.start_step;
            j["end_step"] = s.end_step;
            j["final_loss"] = s.losses.empty() ? 0.0 : s.losses.back();
            j["tokens_per_s"] = mean_tok_s;
            j["precision"] = train_precision_name(s.precision);
            j["stopped"] = s.stopped;
            j["model"] = s.final_model;
            j["checkpoint"] = latest_train_checkpoint(a->out);
            j["log"] = (fs::path(a->out) / "train_log.jsonl").string();
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
