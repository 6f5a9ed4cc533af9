// `aviary chat --model M [--tokenizer world|byte]`: the official World chat format ("User: …\n\nAssistant:",
// spec §6.5): token 0 banned, each reply stops at a blank line, the state carries across turns; /save FILE,
// /load FILE, /reset, /quit. Sampling defaults of CR API_DEMO_CHAT.py (top-p 0.3, penalties 0.5/0.5, decay
// 0.996). The tokenizer follows the model's vocabulary unless given (<= 256 ids: byte; DESIGN.md).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "aviary/core/chat_format.h"
#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "cli_common.h"
#include "sampling_options.h"

namespace aviary::cli {
void register_chat(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("chat", "Chat with a World model (User:/Assistant: format) on stdin/stdout");
    struct Args {
        ModelArgs model;
        std::string vocab, tokenizer, state_in;
        GenerateOptions gen;
    };
    auto a = std::make_shared<Args>();
    a->gen.max_tokens = 500;
    a->gen.sampler.top_p = 0.3f;
    a->gen.sampler.presence_penalty = 0.5f;
    a->gen.sampler.frequency_penalty = 0.5f;
    a->gen.sampler.banned = {0};
    a->gen.stop = {"\n\n"};
    a->gen.stop_at_end_of_text = false;
    a->gen.official_penalty_weights = false;  // the chat demo weighs every token 1
    add_model_options(sub, a->model);
    add_vocab_option(sub, a->vocab);
    add_tokenizer_option(sub, a->tokenizer);
    add_sampling_options(sub, a->gen.sampler);
    sub->add_option("--max-tokens,-n", a->gen.max_tokens, "Tokens per reply at most")->check(CLI::Range(1, 100000));
    sub->add_option("--state", a->state_in, "Start from a saved state file (from /save)");
    sub->callback([&run, a] {
        run = [a] {
            Model model = load_model(a->model);
            const std::unique_ptr<Tokenizer> tok = load_tokenizer_for(model, a->model.model, a->tokenizer, a->vocab);
            State state = a->state_in.empty() ? model.new_state(1) : State::load_for(model, a->state_in);
            const bool tty = isatty(STDIN_FILENO);
            if (tty) std::fprintf(stderr, "Chat: type a message; /save FILE, /load FILE, /reset, /quit.\n");
            std::string line;
            while (true) {
                if (tty) std::fprintf(stderr, "User: ");
                if (!std::getline(std::cin, line)) break;
                if (line.rfind("/quit", 0) == 0 || line.rfind("/exit", 0) == 0) break;
                if (line.rfind("/reset", 0) == 0) {
                    state = model.new_state(1);
                    std::fprintf(stderr, "[state reset]\n");
                    continue;
                }
                if (line.rfind("/save ", 0) == 0 || line.rfind("/load ", 0) == 0) {
                    const std::string path = clean_chat_message(line.substr(6));
                    try {
                        if (line[1] == 's') {
                            state.save_for(model, path);
                            std::fprintf(stderr, "[state saved to %s]\n", path.c_str());
                        } else {
                            state = State::load_for(model, path);  // checked against the model; kept on error
                            std::fprintf(stderr, "[state loaded from %s]\n", path.c_str());
                        }
                    } catch (const Error& e) {  // a bad file must not end the conversation
                        std::fprintf(stderr, "error: %s\n", e.what());
                    }
                    continue;
                }
                const std::string msg = clean_chat_message(line);
                if (msg.empty()) continue;
                const std::string prompt = chat_turn("User", msg) + kChatAssistantPrefix;
                std::fputs("Assistant:", stdout);
                GenerateCallbacks cb;
                cb.on_text = [](const std::string& piece) {
                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                    std::fflush(stdout);
                };
                generate(model, *tok, state, prompt, a->gen, cb);
                std::fputs("\n\n", stdout);
                std::fflush(stdout);
            }
            return 0;
        };
    });
}

}  // namespace aviary::cli
