// aviary-bench-studio-chat: decode speed of the studio's chat (apps/studio/chat_session.cpp, ChatSession::generate)
// on one model and prompt, the number the Chat panel shows as tokens/s: generated tokens / decode seconds.
// Usage: aviary-bench-studio-chat [--model PATH] [--tokenizer byte|world] [--tokens N] [--runs R] [--threads T]
// Defaults: the shipped music-eagle-L6-D256 model (byte tokenizer), an ABC header prompt, 512 tokens, 3 runs, 1 thread
// (the studio worker's default). Each run starts from a fresh state; the seed is fixed, so every run decodes the same
// tokens. Prints one line per run and the median.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "chat_session.h"

int main(int argc, char** argv) {
    std::string model = std::string(AVIARY_SOURCE_DIR) + "/assets/models/music-eagle-L6-D256.safetensors";
    std::string tokenizer = "byte", prompt = "X:1\nT:Bench\nM:6/8\nL:1/8\nK:D\n";
    int tokens = 512, runs = 3, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--model")
            model = v;
        else if (k == "--tokenizer")
            tokenizer = v;
        else if (k == "--prompt")
            prompt = v;
        else if (k == "--tokens")
            tokens = std::atoi(v.c_str());
        else if (k == "--runs")
            runs = std::atoi(v.c_str());
        else if (k == "--threads")
            threads = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "error: unknown option '%s'\n", k.c_str());
            return 2;
        }
    }
    try {
        aviary::set_thread_count(threads);
        aviary::studio::ChatSession session;
        session.load(model, tokenizer);
        aviary::GenerateOptions o;
        o.max_tokens = tokens;
        o.sampler.seed = 7;
        o.stop_at_end_of_text = false;  // always `tokens` steps
        std::vector<double> tps;
        for (int r = 0; r < runs; ++r) {
            session.reset();
            const aviary::GenerateResult g = session.generate(prompt, o, {}, {});
            tps.push_back(double(g.tokens.size()) / g.decode_seconds);
            std::printf("run %d: %zu tokens, decode %.3f s, %.1f tok/s\n", r + 1, g.tokens.size(), g.decode_seconds,
                        tps.back());
        }
        std::sort(tps.begin(), tps.end());
        std::printf("studio chat decode: median %.1f tok/s (%s, %s tokenizer, %d threads)\n", tps[tps.size() / 2],
                    session.describe().c_str(), tokenizer.c_str(), threads);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
