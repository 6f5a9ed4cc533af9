// Shared pieces of the `aviary` command line: the subcommand registry, common model options, and the
// token-list parser (output files go through aviary::write_file_atomic: never a partial file).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aviary/core/model.h"
#include "aviary/core/tokenizer.h"
#include "aviary/core/trainer.h"

namespace aviary::cli {

// Each subcommand registers itself and sets `run`, called after a successful parse.
using Runner = std::function<int()>;
void register_info(CLI::App& app, Runner& run);
void register_forward(CLI::App& app, Runner& run);
void register_tokenize(CLI::App& app, Runner& run);
void register_generate(CLI::App& app, Runner& run);
void register_chat(CLI::App& app, Runner& run);
void register_convert(CLI::App& app, Runner& run);
void register_bench(CLI::App& app, Runner& run);
void register_train(CLI::App& app, Runner& run);
void register_data(CLI::App& app, Runner& run);
void register_eval(CLI::App& app, Runner& run);
void register_music(CLI::App& app, Runner& run);     // after register_eval (adds `eval music-loss`)
void register_audio(CLI::App& app, Runner& run);     // cmd_audio.cpp, after register_train/register_eval
void register_vision(CLI::App& app, Runner& run);    // cmd_vision.cpp, after register_train/register_eval
void register_research(CLI::App& app, Runner& run);  // cmd_research.cpp
void register_serve(CLI::App& app, Runner& run);     // cmd_serve.cpp (when the server module is built)

struct ModelArgs {
    std::string model;
    std::string device = "cpu";
    std::string dtype = "fp32";  // or "auto" (a command's default): the checkpoint's precision (load_model)
    int threads = 0;
};
// Whether these arguments, before any parsing, run `aviary train …` or `aviary research …` (whose runs train) in fp32
// on the CPU: `--precision fp32`, or no `--precision` on a CPU without native bf16 products (where the default is fp32
// without measuring); not with `--device cuda`. main() gives it to ensure_start_up_env (blas_core.h) so that such runs
// start with both thread pools' idle workers asleep (threads.h). (A CPU with AVX512-BF16 and no AMX measures its
// default at run time: no.)
bool runs_fp32_training(int argc, char** argv);

// Adds --model (required when `required`), --device, --dtype, --threads.
void add_model_options(CLI::App* sub, ModelArgs& args, bool required = true);
Model load_model(const ModelArgs& args);

// Adds --vocab; load_tokenizer falls back to WorldTokenizer::default_vocab_path().
void add_vocab_option(CLI::App* sub, std::string& vocab);
WorldTokenizer load_tokenizer(const std::string& vocab);
// Adds --tokenizer world|byte (the generation commands; DESIGN.md: left out, byte for vocabularies of <= 256 ids).
void add_tokenizer_option(CLI::App* sub, std::string& kind);
// The tokenizer for `model`, loaded from `model_path` (make_tokenizer): kind "" = by the model's vocabulary size;
// vocab "" = the default World vocabulary. A kind that does not fit the model is an aviary::Error naming the file and
// both sizes.
std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& model, const std::string& model_path,
                                              const std::string& kind, const std::string& vocab);

// Adds --precision bf16|fp32 to a `train` command (trainer.h TrainPrecision); left out, `precision` keeps Auto:
// bf16 where the CPU has AMX-BF16, else fp32.
void add_precision_option(CLI::App* sub, TrainPrecision& precision);

// The shared token-LM trainer with a progress bar on stderr (when show_progress) and Ctrl-C handled as "save a
// checkpoint and stop" (cmd_train_text.cpp); mean_tokens_per_s (optional) gets the average throughput.
TrainSummary train_language_model_with_progress(Model& model, const TokenSource& data, const LmTrainConfig& config,
                                                bool show_progress, double* mean_tokens_per_s = nullptr);

// Parses "1,5,77" into ids; throws UsageError naming the bad piece.
std::vector<int64_t> parse_token_list(const std::string& text);

}  // namespace aviary::cli
