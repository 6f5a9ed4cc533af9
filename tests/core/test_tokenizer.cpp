// Tests of the World tokenizer (core/src/tokenizer_world.cpp), the ABC byte tokenizer and utf8_valid_prefix.
// Expected ids come from the OFFICIAL tokenizer (pip rwkv==0.8.32 TRIE_TOKENIZER) through the golden file
// tests/fixtures/tokenizer/world_tokenizer_cases.tsv (tools/make_tokenizer_fixtures.py) and from the spec §5
// test vectors; the vocabulary is the one set-up installs (assets/vocab/rwkv_vocab_v20230424.txt).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/tokenizer.h"

namespace {

// assets/vocab/ after set-up; looked up when a test runs (not at static initialisation, where a missing file would
// end the process before GoogleTest could report it)
std::string vocab_path() {
    return aviary::WorldTokenizer::default_vocab_path();
}

const aviary::WorldTokenizer& world() {
    static const aviary::WorldTokenizer tok = aviary::WorldTokenizer::load(vocab_path());
    return tok;
}

struct GoldenCase {
    std::string kind, name, bytes;
    std::vector<int32_t> ids;
};

std::string from_hex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::vector<GoldenCase> golden_cases() {
    std::ifstream in(std::string(AVIARY_FIXTURES_DIR) + "/tokenizer/world_tokenizer_cases.tsv");
    EXPECT_TRUE(in.good()) << "missing tests/fixtures/tokenizer/world_tokenizer_cases.tsv";
    std::vector<GoldenCase> cases;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        GoldenCase c;
        std::string hex, ids;
        std::getline(fields, c.kind, '\t');
        std::getline(fields, c.name, '\t');
        std::getline(fields, hex, '\t');
        std::getline(fields, ids, '\t');
        c.bytes = from_hex(hex);
        std::istringstream id_stream(ids);
        for (int32_t id; id_stream >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    return cases;
}

std::string write_temp(const std::string& name, const std::string& content) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Vocabulary lines of the 256 single bytes (ids 1..256), each ending in `eol`.
std::string single_byte_lines(const char* eol) {
    std::string out;
    for (int b = 0; b < 256; ++b) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%d b'\\x%02x' 1", b + 1, b);
        out += buf;
        out += eol;
    }
    return out;
}

}  // namespace

TEST(TokenizerWorld, SpecTestVectors) {
    // spec §5.2 (LM rwkv_v6_demo.py @48d55be)
    EXPECT_EQ(world().encode("The Eiffel tower is in the city of"),
              (std::vector<int32_t>{6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706}));
    EXPECT_EQ(world().encode("User: hi\n\nAssistant:"), (std::vector<int32_t>{24281, 59, 4571, 261, 5585, 41693, 59}));
}

TEST(TokenizerWorld, VocabularyFacts) {
    const auto& tok = world();
    EXPECT_EQ(tok.vocab_size(), 65530);
    EXPECT_EQ(tok.token_bytes(11), "\n");
    EXPECT_EQ(tok.token_bytes(261), "\n\n");
    EXPECT_EQ(tok.token_bytes(33), " ");
    EXPECT_EQ(tok.token_bytes(0), "");
    for (int b = 0; b < 256; ++b) EXPECT_EQ(tok.token_bytes(b + 1), std::string(1, static_cast<char>(b))) << b;
    EXPECT_EQ(tok.token_bytes(65529), std::string(128, ' '));
    EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
}

TEST(TokenizerWorld, EncodeMatchesOfficial) {
    const auto cases = golden_cases();
    int n_encode = 0;
    for (const auto& c : cases) {
        if (c.kind != "encode") continue;
        ++n_encode;
        const auto ids = world().encode(c.bytes);
        if (ids != c.ids) {
            size_t k = 0;
            while (k < ids.size() && k < c.ids.size() && ids[k] == c.ids[k]) ++k;
            ADD_FAILURE() << c.name << ": first difference at token " << k << " of " << c.ids.size() << ": got "
                          << (k < ids.size() ? ids[k] : -1) << ", official " << (k < c.ids.size() ? c.ids[k] : -1);
        }
    }
    EXPECT_GE(n_encode, 80);  // the golden file holds 85 encode cases
}

TEST(TokenizerWorld, DecodeMatchesOfficialAndRoundTrips) {
    const auto cases = golden_cases();
    int n_decode = 0;
    for (const auto& c : cases) {
        if (c.kind == "decode") {
            ++n_decode;
            EXPECT_EQ(world().decode(c.ids), c.bytes) << c.name;
        } else {
            EXPECT_EQ(world().decode(c.ids), c.bytes) << c.name << ": round trip of the official ids";
        }
    }
    EXPECT_GE(n_decode, 8);
    // Random bytes round-trip exactly (bytes-level tokenizer: nothing is lost, invalid UTF-8 included).
    std::mt19937_64 rng(7);
    for (int k = 0; k < 50; ++k) {
        std::string s(rng() % 2000, '\0');
        for (auto& ch : s) ch = static_cast<char>(rng() % (k % 2 ? 256 : 128));
        EXPECT_EQ(world().decode(world().encode(s)), s) << "case " << k;
    }
}

TEST(TokenizerWorld, DecodeIdZeroAndOutOfRange) {
    EXPECT_EQ(world().decode({0, 6699, 0}), "The");
    try {
        world().decode({6699, 70000});
        FAIL() << "expected aviary::Error";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find("70000"), std::string::npos) << e.what();
    }
    EXPECT_THROW(world().decode({-1}), aviary::Error);
    EXPECT_THROW(world().token_bytes(65530), aviary::Error);
}

TEST(TokenizerWorld, CrlfVocabularyGivesTheSameTokens) {
    // The copy in the rwkv pip package and LM RWKV-v5/tokenizer has CRLF line endings (spec §5.1).
    std::string content = read_file(vocab_path()), crlf;
    ASSERT_FALSE(content.empty());
    for (char c : content) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    const auto tok = aviary::WorldTokenizer::load(write_temp("aviary_vocab_crlf.txt", crlf));
    for (const auto& c : golden_cases()) {
        if (c.kind == "encode") {
            EXPECT_EQ(tok.encode(c.bytes), c.ids) << c.name;
        }
    }
}

TEST(TokenizerWorld, MalformedVocabularyLinesAreRejected) {
    // A valid prefix (the 256 single bytes) so that only the bad line can be the reason.
    std::string good;
    {
        std::istringstream in(read_file(vocab_path()));
        std::string line;
        for (int i = 0; i < 256 && std::getline(in, line); ++i) good += line + "\n";
    }
    const struct {
        const char* line;
        const char* expect;
    } bad[] = {
        {"257 'ab' 3", ":257"},                    // length mismatch
        {"257 'ab'", ":257"},                      // no length
        {"x57 'ab' 2", ":257"},                    // bad id
        {"257 ab 2", ":257"},                      // not a literal
        {"257 'a\\qb' 3", ":257"},                 // unknown escape
        {"257 'ab 3", ":257"},                     // unterminated
        {"257 b'\\xZZ' 1", ":257"},                // bad hex
        {"257 '\\u12' 1", ":257"},                 // truncated \u
        {"1 'zz' 2", ":257"},                      // duplicate id
        {"257 'a' 1", "same bytes"},               // duplicate bytes (id 98 is 'a')
        {"257 b'\\xe4\\xb8\\xad\xff' 4", ":257"},  // non-ASCII inside bytes literal
    };
    for (const auto& b : bad) {
        const std::string path = write_temp("aviary_vocab_bad.txt", good + b.line + "\n");
        try {
            aviary::WorldTokenizer::load(path);
            ADD_FAILURE() << "accepted: " << b.line;
        } catch (const aviary::Error& e) {
            EXPECT_NE(std::string(e.what()).find(b.expect), std::string::npos) << b.line << " -> " << e.what();
        }
    }
    // A vocabulary lacking a single byte cannot encode every input.
    EXPECT_THROW(aviary::WorldTokenizer::load(write_temp("aviary_vocab_short.txt", "98 'a' 1\n")), aviary::Error);
    EXPECT_THROW(aviary::WorldTokenizer::load(::testing::TempDir() + "does_not_exist.txt"), aviary::Error);
}

// parse() is load()'s own parser (load reads the file and calls it, the fuzzer calls it on its input): the same
// vocabulary from the same text, and the same error, naming the same line, for a malformed one.
TEST(TokenizerWorld, ParseOfTheTextIsLoadOfTheFile) {
    const std::string text = read_file(vocab_path());
    const auto parsed = aviary::WorldTokenizer::parse(text, vocab_path());
    ASSERT_EQ(parsed.vocab_size(), world().vocab_size());
    for (int32_t id = 1; id < world().vocab_size(); ++id) ASSERT_EQ(parsed.token_bytes(id), world().token_bytes(id));
    for (const auto& c : golden_cases()) {
        if (c.kind == "encode") {
            EXPECT_EQ(parsed.encode(c.bytes), c.ids) << c.name;
        }
    }

    const std::string bytes = single_byte_lines("\r\n");  // CRLF; then a blank line and no final newline
    const std::string variants[] = {
        bytes + "\n257 'ab' 2",
        bytes + "\n257 'ab' 3\n",
        bytes + "258 'ab' 2\n257 'cd' 2\n258 'ef' 2",
        bytes.substr(0, bytes.size() / 2),
        "",
        "\n\n",
        std::string("1 '\0' 1\n", 9),
    };
    size_t refused = 0;
    for (size_t i = 0; i < std::size(variants); ++i) {
        const std::string path = write_temp("aviary_vocab_variant.txt", variants[i]);
        std::string load_error, parse_error;
        int32_t load_size = -1, parse_size = -1;
        try {
            load_size = aviary::WorldTokenizer::load(path).vocab_size();
        } catch (const aviary::Error& e) {
            load_error = e.what();
        }
        try {
            parse_size = aviary::WorldTokenizer::parse(variants[i], path).vocab_size();
        } catch (const aviary::Error& e) {
            parse_error = e.what();
        }
        EXPECT_EQ(parse_error, load_error) << "variant " << i;
        EXPECT_EQ(parse_size, load_size) << "variant " << i;
        refused += !load_error.empty();
    }
    EXPECT_EQ(refused, 6u);  // all but the first
}

// Ids need not be dense: a vocabulary naming one id far above the others (the fuzzer's slow input, 16 bytes that
// took 56 s per load when every id up to the largest held a string) loads with that id and none of the gap.
TEST(TokenizerWorld, SparseIdsUpToTheLargest) {
    std::string vocab = single_byte_lines("\n");
    vocab += "16000000 'zz' 2\n300 'ab' 2\n";
    const auto tok = aviary::WorldTokenizer::parse(vocab, "sparse.txt");
    EXPECT_EQ(tok.vocab_size(), 16000001);
    EXPECT_EQ(tok.token_bytes(16000000), "zz");
    EXPECT_EQ(tok.token_bytes(300), "ab");
    EXPECT_EQ(tok.token_bytes(0), "");
    EXPECT_THROW(tok.token_bytes(299), aviary::Error);
    EXPECT_THROW(tok.token_bytes(15999999), aviary::Error);
    EXPECT_THROW(tok.token_bytes(16000001), aviary::Error);
    EXPECT_EQ(tok.encode("zzabz"), (std::vector<int32_t>{16000000, 300, 123}));
    EXPECT_EQ(tok.decode({16000000, 300, 0, 123}), "zzabz");
    EXPECT_THROW(tok.decode({299}), aviary::Error);
    // Still refused: an id at 2^24 and a repeated id far from the others.
    EXPECT_THROW(aviary::WorldTokenizer::parse(vocab + "16777216 'q' 1\n", "x"), aviary::Error);
    EXPECT_THROW(aviary::WorldTokenizer::parse(vocab + "16000000 'yy' 2\n", "x"), aviary::Error);
}

TEST(TokenizerWorld, LiteralForms) {
    // str with \u escapes, double-quoted str with a single quote, bytes literal with raw bytes.
    std::string vocab = single_byte_lines("\n");
    vocab += "257 '\\u4e2d\\u6587' 6\n258 \"it's\" 4\n259 b'\\xe4\\xb8' 2\n260 'tab\\there \\\\ \\'q\\'' 14\n";
    const auto tok = aviary::WorldTokenizer::load(write_temp("aviary_vocab_literals.txt", vocab));
    EXPECT_EQ(tok.token_bytes(257), "\xE4\xB8\xAD\xE6\x96\x87");
    EXPECT_EQ(tok.token_bytes(258), "it's");
    EXPECT_EQ(tok.token_bytes(259), "\xE4\xB8");
    EXPECT_EQ(tok.token_bytes(260), "tab\there \\ 'q'");
    EXPECT_EQ(tok.encode("\xE4\xB8\xAD\xE6\x96\x87 it's \xE4\xB8x"),
              (std::vector<int32_t>{257, 33, 258, 33, 259, 121}));
}

TEST(TokenizerWorld, DefaultVocabPathHonoursEnvironment) {
    // a copy elsewhere: $AVIARY_VOCAB wins over the installed file
    const std::string copy = std::string(::testing::TempDir()) + "aviary_vocab_copy.txt";
    std::ofstream(copy, std::ios::binary) << read_file(vocab_path());
    ::setenv("AVIARY_VOCAB", copy.c_str(), 1);
    EXPECT_EQ(aviary::WorldTokenizer::default_vocab_path(), copy);
    ::setenv("AVIARY_VOCAB", "/nonexistent/vocab.txt", 1);
    EXPECT_THROW(aviary::WorldTokenizer::default_vocab_path(), aviary::Error);
    ::unsetenv("AVIARY_VOCAB");
    EXPECT_NO_THROW(aviary::WorldTokenizer::default_vocab_path());  // assets/vocab/ after tools/install-deps.sh
}

TEST(TokenizerByte, EncodeDecode) {
    const aviary::ByteTokenizer tok;
    EXPECT_EQ(tok.encode("X:1\nK:C"), (std::vector<int32_t>{88, 58, 49, 10, 75, 58, 67}));
    EXPECT_EQ(tok.decode({2, 88, 58, 49, 0, 1, 3}), "X:1");
    EXPECT_EQ(aviary::ByteTokenizer::kBos, 2);
    EXPECT_EQ(aviary::ByteTokenizer::kEos, 3);
}

TEST(Utf8ValidPrefix, CompleteAndBrokenSequences) {
    using aviary::utf8_valid_prefix;
    EXPECT_EQ(utf8_valid_prefix(""), 0u);
    EXPECT_EQ(utf8_valid_prefix("abc"), 3u);
    EXPECT_EQ(utf8_valid_prefix("a\xE4\xB8\xAD"), 4u);      // 中
    EXPECT_EQ(utf8_valid_prefix("a\xE4\xB8"), 1u);          // truncated 3-byte
    EXPECT_EQ(utf8_valid_prefix("\xF0\x9F\x98\x80!"), 5u);  // 😀!
    EXPECT_EQ(utf8_valid_prefix("\xF0\x9F\x98"), 0u);
    EXPECT_EQ(utf8_valid_prefix("ok\x80"), 2u);            // lone continuation
    EXPECT_EQ(utf8_valid_prefix("\xC0\xAF"), 0u);          // overlong
    EXPECT_EQ(utf8_valid_prefix("\xED\xA0\x80"), 0u);      // surrogate
    EXPECT_EQ(utf8_valid_prefix("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
    EXPECT_EQ(utf8_valid_prefix("\xC3\xA9\xC3"), 2u);      // é + truncated
}
