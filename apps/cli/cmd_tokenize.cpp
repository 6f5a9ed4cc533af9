// `aviary tokenize [--vocab F] [--decode]`: stdin to stdout; ids separated by spaces; --decode reverses.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include "aviary/core/error.h"
#include "cli_common.h"

namespace aviary::cli {

void register_tokenize(CLI::App& app, Runner& run) {
    auto* sub =
        app.add_subcommand("tokenize", "World tokenizer: text on stdin to ids on stdout (or back with --decode)");
    struct Args {
        std::string vocab;
        bool decode = false;
    };
    auto a = std::make_shared<Args>();
    add_vocab_option(sub, a->vocab);
    sub->add_flag("--decode,-d", a->decode, "Read ids (separated by spaces/newlines) and write the text");
    sub->callback([&run, a] {
        run = [a] {
            WorldTokenizer tok = load_tokenizer(a->vocab);
            std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
            if (!a->decode) {
                std::string out;
                for (int32_t id : tok.encode(input)) {
                    if (!out.empty()) out += ' ';
                    out += std::to_string(id);
                }
                out += '\n';
                std::fwrite(out.data(), 1, out.size(), stdout);
                return 0;
            }
            std::vector<int32_t> ids;
            std::istringstream in(input);
            std::string word;
            while (in >> word) {
                const bool digits = word.size() <= 10 && word.find_first_not_of("0123456789") == std::string::npos;
                if (!digits) throw UsageError("tokenize --decode: '" + word + "' is not a token id");
                const long long id = std::stoll(word);
                AVIARY_CHECK(id < tok.vocab_size(), "token id ", id, " is out of range (vocabulary has ",
                             tok.vocab_size(), " ids)");
                ids.push_back(static_cast<int32_t>(id));
            }
            const std::string text = tok.decode(ids);
            std::fwrite(text.data(), 1, text.size(), stdout);
            return 0;
        };
    });
}

}  // namespace aviary::cli
