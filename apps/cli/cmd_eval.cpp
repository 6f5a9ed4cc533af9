// `aviary eval text --model M --data D [--ctx-len T] [--max-tokens N]`: mean
// loss over the data read as one long sequence (state carried across windows),
// bits per byte and perplexity, as one JSON object on stdout.
// `aviary eval loss-by-position --model M [--model M2 …] --data D`: the mean loss at each token position over the
// documents of a corpus (the paper's long-context figure), CSV + PNG overlaying the models; positions may run
// beyond the training context (`--max-len`).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "aviary/core/error.h"
#include "aviary/core/loss_by_position.h"
#include "aviary/core/train_data.h"
#include "aviary/core/trainer.h"
#include "cli_common.h"
#include "position_loss_output.h"

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

    auto* lp = ev->add_subcommand("loss-by-position", "Mean loss at each token position over documents (CSV + PNG)");
    struct PosArgs {
        std::vector<std::string> models;
        std::string data, tokenizer = "world", vocab, out = "loss_by_position";
        int64_t max_len = 4096, max_docs = 0, min_len = 2;
        double sigma = 32;
        int threads = 0;
    };
    auto l = std::make_shared<PosArgs>();
    lp->add_option("--model,-m", l->models, "Model file (repeatable: curves are overlaid)")->required();
    lp->add_option("--data", l->data, ".jsonl {\"text\"}, text file, or directory (one document per file)")->required();
    lp->add_option("--tokenizer", l->tokenizer, "world (default) or byte")->check(CLI::IsMember({"world", "byte"}));
    add_vocab_option(lp, l->vocab);
    lp->add_option("--max-len", l->max_len, "Tokens per document at most (may exceed the training context)")
        ->check(CLI::Range(int64_t(2), int64_t(1) << 24));
    lp->add_option("--min-len", l->min_len, "Skip documents shorter than this (tokens)")->check(CLI::PositiveNumber);
    lp->add_option("--max-docs", l->max_docs, "Evaluate at most N documents (0: all)")->check(CLI::NonNegativeNumber);
    lp->add_option("--sigma", l->sigma, "Gaussian smoothing of the curves (positions; 0: off)")
        ->check(CLI::NonNegativeNumber);
    lp->add_option("--threads", l->threads, "CPU threads")->check(CLI::NonNegativeNumber);
    lp->add_option("--out,-o", l->out, "Output prefix: PREFIX.csv, PREFIX.png");
    lp->callback([&run, l] {
        run = [l] {
            TextEncoder enc = make_text_encoder(l->tokenizer, l->vocab);
            std::vector<std::vector<int32_t>> docs;
            for_each_document(l->data, [&](std::string_view text) {
                if (l->max_docs > 0 && int64_t(docs.size()) >= l->max_docs) return;
                std::vector<int32_t> ids = enc.encode(text);
                if (int64_t(ids.size()) > l->max_len) ids.resize(size_t(l->max_len));
                if (int64_t(ids.size()) >= l->min_len) docs.push_back(std::move(ids));
            });
            AVIARY_CHECK(!docs.empty(), "'", l->data, "' holds no document of at least ", l->min_len, " tokens");
            std::vector<PositionLoss> raw;
            for (const auto& m : l->models) {
                ModelArgs ma;
                ma.model = m;
                ma.threads = l->threads;
                Model model = load_model(ma);
                raw.push_back(loss_by_position(model, docs, l->max_len));
            }
            nlohmann::json j = write_position_loss_outputs(l->out, l->models, raw, l->sigma, "loss by token position",
                                                           "token position");
            j["documents"] = docs.size();
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
