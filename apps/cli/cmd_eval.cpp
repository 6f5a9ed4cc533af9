// `aviary eval text --model M --data D [--ctx-len T] [--max-tokens N]`: mean
// loss over the data read as one long sequence (state carried across windows),
// bits per byte and perplexity, as one JSON object on stdout.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "aviary/core/error.h"
#include "aviary/core/trainer.h"
#include "cli_common.h"

namespace aviary::cli {

void register_eval(CLI::App& app, Runner& run) {
    auto* ev = app.add_subcommand("eval", "Evaluate a model");
    ev->require_subcommand(1);
    auto* sub = ev->add_subcommand("text", "Loss, bits per byte and perplexity on a text corpus or binidx");
    struct Args {
        ModelArgs model;
        std::string data, tokenizer = "world", vocab;
        int64_t ctx_len = 512, max_tokens = 0;
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model);
    sub->add_option("--data", a->data, "binidx prefix, .jsonl, text file or directory")->required();
    sub->add_option("--tokenizer", a->tokenizer, "world (default) or byte")->check(CLI::IsMember({"world", "byte"}));
    add_vocab_option(sub, a->vocab);
    sub->add_option("--ctx-len", a->ctx_len, "Tokens per forward call (the state carries over)")
        ->check(CLI::PositiveNumber);
    sub->add_option("--max-tokens", a->max_tokens, "Score at most this many tokens (0: all)")
        ->check(CLI::NonNegativeNumber);
    sub->callback([&run, a] {
        run = [a] {
            TextEncoder enc = make_text_encoder(a->tokenizer, a->vocab);
            auto data = open_token_source(a->data, enc);
            Model model = load_model(a->model);
            EvalResult r = evaluate_language_model(model, *data, a->ctx_len, a->max_tokens);
            std::vector<int64_t> ids(size_t(r.tokens));
            data->read(1, r.tokens, ids.data());
            int64_t bytes = 0;
            for (int64_t id : ids) bytes += enc.byte_length(id);
            nlohmann::json j;
            j["loss"] = r.loss;
            j["perplexity"] = std::exp(r.loss);
            j["bits_per_byte"] = bytes > 0 ? r.loss * double(r.tokens) / std::log(2.0) / double(bytes) : 0.0;
            j["tokens"] = r.tokens;
            j["bytes"] = bytes;
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
