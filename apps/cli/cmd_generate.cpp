// `aviary generate --model M --prompt P [--tokenizer world|byte] [...]`: streams the continuation of a prompt to
// stdout through core generate() (the tokenizer by the model's vocabulary unless given: <= 256 ids, byte).
#include <cstdio>

#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "cli_common.h"
#include "sampling_options.h"

namespace aviary::cli {

void register_generate(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("generate", "Stream a continuation of a prompt");
    struct Args {
        ModelArgs model;
        std::string vocab, tokenizer, prompt;
        GenerateOptions gen;
        bool stats = false;
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model);
    add_vocab_option(sub, a->vocab);
    add_tokenizer_option(sub, a->tokenizer);
    sub->add_option("--prompt,-p", a->prompt, "Prompt text")->required();
    sub->add_option("--max-tokens,-n", a->gen.max_tokens, "Tokens to generate at most")->check(CLI::Range(1, 1000000));
    add_sampling_options(sub, a->gen.sampler);
    sub->add_option("--stop", a->gen.stop, "Stop sequence (repeatable); not printed");
    sub->add_flag("--stats", a->stats, "Print prefill/decode speed on stderr at the end");
    sub->callback([&run, a] {
        run = [a] {
            if (a->prompt.empty()) throw UsageError("--prompt is empty (give the text to continue)");
            Model model = load_model(a->model);
            const std::unique_ptr<Tokenizer> tok = load_tokenizer_for(model, a->model.model, a->tokenizer, a->vocab);
            State state = model.new_state(1);
            GenerateCallbacks cb;
            cb.on_text = [](const std::string& piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            };
            GenerateResult r = generate(model, *tok, state, a->prompt, a->gen, cb);
            std::fputc('\n', stdout);
            if (a->stats) {
                const size_t n_prompt = size_t(r.prompt_tokens);
                std::fprintf(stderr, "[prefill %zu tokens %.1f tok/s; decode %zu tokens %.1f tok/s; stop: %s]\n",
                             n_prompt, n_prompt / std::max(r.prefill_seconds, 1e-9), r.tokens.size(),
                             r.tokens.size() / std::max(r.decode_seconds, 1e-9), r.stop_reason.c_str());
            }
            return 0;
        };
    });
}

}  // namespace aviary::cli
