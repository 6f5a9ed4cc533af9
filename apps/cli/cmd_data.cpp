// `aviary data build --in CORPUS --out PREFIX [--tokenizer world|byte] [--vocab
// F]`: tokenizes a JSONL / text file / directory corpus into RWKV-LM binidx
// (PREFIX.bin + PREFIX.idx; train_data.h), with a progress bar on stderr and a
// JSON summary on stdout.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/error.h"
#include "aviary/core/train_data.h"
#include "cli_common.h"
#include "progress_bar.h"

namespace aviary::cli {

void register_data(CLI::App& app, Runner& run) {
    auto* data = app.add_subcommand("data", "Prepare training data");
    data->require_subcommand(1);
    auto* sub = data->add_subcommand("build",
                                     "Tokenize a corpus (JSONL {\"text\":…}, "
                                     "text file or directory) to binidx");
    struct Args {
        std::string in, out, tokenizer = "world", vocab;
        bool quiet = false;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--in", a->in, "Corpus: .jsonl, a text file or a directory of text files")->required();
    sub->add_option("--out", a->out, "Output prefix: writes PREFIX.bin and PREFIX.idx")->required();
    sub->add_option("--tokenizer", a->tokenizer, "world (default) or byte")->check(CLI::IsMember({"world", "byte"}));
    add_vocab_option(sub, a->vocab);
    sub->add_flag("--quiet,-q", a->quiet, "No progress bar");
    sub->callback([&run, a] {
        run = [a] {
            namespace fs = std::filesystem;
            const fs::path prefix(binidx_prefix(a->out));
            const fs::path dir = prefix.has_parent_path() ? prefix.parent_path() : fs::path(".");
            AVIARY_CHECK(fs::is_directory(dir), "output directory '", dir.string(), "' does not exist");
            TextEncoder enc = make_text_encoder(a->tokenizer, a->vocab);
            ProgressBar bar(!a->quiet);
            BinIdxBuildStats st = build_binidx(a->in, prefix.string(), enc, [&](uint64_t done, uint64_t total) {
                bar.update(double(done), double(total), std::to_string(done >> 20) + " MiB");
                return true;
            });
            bar.finish();
            nlohmann::json j;
            j["prefix"] = prefix.string();
            j["documents"] = st.documents;
            j["tokens"] = st.tokens;
            j["bytes"] = st.bytes;
            j["tokenizer"] = enc.kind;
            std::printf("%s\n", j.dump().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
