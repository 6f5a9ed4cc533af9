// aviary-bench-tokenizer: single-thread throughput of the World tokenizer (encode and decode, MB/s and
// tokens/s, best of several runs) against the ≥ 50 MB/s target of perf_anchors.md §4.
// Usage: aviary-bench-tokenizer [--vocab PATH] [--runs N] [--mb SIZE] [TEXT_FILE]
// Without TEXT_FILE the input is a seeded mixture of English prose, code and CJK built from vocabulary words.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

namespace {

// Utf-8 text of `bytes` bytes: lines of English words, code-like lines and CJK runs, drawn from the
// vocabulary's own tokens (so that the mixture resembles real text at the token level).
std::string generate_mixture(const aviary::WorldTokenizer& tok, size_t bytes, uint64_t seed) {
    std::vector<std::string> words, cjk;
    for (int32_t id = 257; id < tok.vocab_size(); ++id) {
        const std::string& t = tok.token_bytes(id);
        if (t.size() >= 3 && t.size() <= 10 && t[0] == ' ' &&
            std::all_of(t.begin() + 1, t.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
            words.push_back(t);
        } else if (t.size() == 3 || t.size() == 6) {
            if (static_cast<unsigned char>(t[0]) >= 0xE4 && static_cast<unsigned char>(t[0]) <= 0xE9 &&
                aviary::utf8_valid_prefix(t) == t.size()) {
                cjk.push_back(t);
            }
        }
    }
    static const char* kCode[] = {"    for (int i = 0; i < n; ++i) {\n",
                                  "        sum += values[i] * weights[i];\n",
                                  "    }\n",
                                  "def forward(self, x):\n",
                                  "        return self.head(self.ln_out(x))\n",
                                  "#include <vector>\n",
                                  "    if (!ok) return nullptr;  // nothing to do\n"};
    std::mt19937_64 rng(seed);
    std::string out;
    out.reserve(bytes + 256);
    while (out.size() < bytes) {
        const int kind = static_cast<int>(rng() % 10);
        if (kind < 6) {  // English sentence
            const int n = 8 + static_cast<int>(rng() % 20);
            out += "The";
            for (int k = 0; k < n; ++k) out += words[rng() % words.size()];
            out += rng() % 3 ? ".\n" : ", and";
        } else if (kind < 8) {
            out += kCode[rng() % (sizeof kCode / sizeof kCode[0])];
        } else {
            const int n = 10 + static_cast<int>(rng() % 30);
            for (int k = 0; k < n; ++k) out += cjk[rng() % cjk.size()];
            out += "\xE3\x80\x82\n";  // 。
        }
    }
    return out;
}

template <class F>
double best_seconds(int runs, F&& f) {
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string vocab, file;
        int runs = 5;
        double mb = 16.0;
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            if (a == "--vocab" && i + 1 < argc) {
                vocab = argv[++i];
            } else if (a == "--runs" && i + 1 < argc) {
                runs = std::max(1, std::atoi(argv[++i]));
            } else if (a == "--mb" && i + 1 < argc) {
                mb = std::atof(argv[++i]);
            } else if (a == "-h" || a == "--help") {
                std::printf("usage: aviary-bench-tokenizer [--vocab PATH] [--runs N] [--mb SIZE] [TEXT_FILE]\n");
                return 0;
            } else {
                file = a;
            }
        }
        if (vocab.empty()) vocab = aviary::WorldTokenizer::default_vocab_path();
        const auto t_load = std::chrono::steady_clock::now();
        const auto tok = aviary::WorldTokenizer::load(vocab);
        const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

        std::string text;
        if (!file.empty()) {
            std::ifstream in(file, std::ios::binary);
            AVIARY_CHECK(in.good(), "cannot open ", file);
            text.assign(std::istreambuf_iterator<char>(in), {});
        } else {
            text = generate_mixture(tok, static_cast<size_t>(mb * 1e6), 42);
        }
        const double mbytes = text.size() / 1e6;

        std::vector<int32_t> ids;
        const double enc_s = best_seconds(runs, [&] { ids = tok.encode(text); });
        std::string back;
        const double dec_s = best_seconds(runs, [&] { back = tok.decode(ids); });
        AVIARY_CHECK(back == text, "decode(encode(text)) differs from the input");

        std::printf("vocab load: %.1f ms (%s)\n", load_s * 1e3, vocab.c_str());
        std::printf("input: %.2f MB (%s), %zu tokens, %.2f bytes/token\n", mbytes,
                    file.empty() ? "generated English/code/CJK mixture" : file.c_str(), ids.size(),
                    double(text.size()) / double(ids.size()));
        std::printf("encode: %8.1f MB/s  %7.2f M tokens/s  (best of %d)\n", mbytes / enc_s, ids.size() / enc_s / 1e6,
                    runs);
        std::printf("decode: %8.1f MB/s  %7.2f M tokens/s  (best of %d)\n", mbytes / dec_s, ids.size() / dec_s / 1e6,
                    runs);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
