// Tests of sample_logits / Sampler (core/src/sampler.cpp) and of the model-free parts of the generator
// (core/src/generator.cpp: stop-sequence matching, UTF-8 streaming, official penalty weights).
// The expected distributions are computed here independently, straight from spec §6.2 (full sort, fp32
// cumsum, cutoff with ">=", top_k, p^(1/T)); the penalty arithmetic follows ChatRWKV PIPELINE.generate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "aviary/core/error.h"
#include "aviary/core/generator.h"
#include "aviary/core/sampler.h"

namespace {

// Spec §6.2 done the plain way: the filtered, normalised distribution that the draw follows.
std::vector<double> reference_distribution(const std::vector<float>& logits, float temperature, float top_p,
                                           int top_k) {
    if (temperature == 0.0f) {
        temperature = 1.0f;
        top_p = 0.0f;
    }
    const size_t n = logits.size();
    const double mx = *std::max_element(logits.begin(), logits.end());
    double z = 0.0;
    for (float l : logits) z += std::exp(double(l) - mx);
    std::vector<float> probs(n);
    for (size_t i = 0; i < n; ++i) probs[i] = static_cast<float>(std::exp(double(logits[i]) - mx) / z);
    std::vector<size_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
    float cumsum = 0.0f;
    size_t first = 0;
    bool found = false;
    for (size_t k = 0; k < n && !found; ++k) {
        cumsum += probs[ids[k]];
        if (cumsum >= top_p) {
            first = k;
            found = true;
        }
    }
    const float cutoff = probs[ids[found ? first : 0]];
    std::vector<double> w(n, 0.0);
    for (size_t k = 0; k < n; ++k) {
        const size_t i = ids[k];
        if (probs[i] < cutoff) continue;
        if (top_k > 0 && top_k < static_cast<int>(n) && k >= static_cast<size_t>(top_k)) continue;
        w[i] = std::pow(double(probs[i]), 1.0 / temperature);
    }
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    for (auto& x : w) x /= total;
    return w;
}

std::vector<float> random_logits(size_t n, float scale, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> l(n);
    for (auto& x : l) x = normal(rng);
    return l;
}

// Draws `draws` samples and compares the frequencies with the reference: no draw outside its support, and
// |freq - p| <= 5 standard deviations of a binomial frequency (sqrt(p(1-p)/draws)) + 3 / draws for every token
// (the last term admits a few stray draws of very unlikely tokens).
void expect_distribution(const std::vector<float>& logits, float temperature, float top_p, int top_k, int draws,
                         uint64_t seed) {
    const auto expected = reference_distribution(logits, temperature, top_p, top_k);
    std::mt19937_64 rng(seed);
    std::vector<int> counts(logits.size(), 0);
    for (int d = 0; d < draws; ++d) {
        const int32_t t =
            aviary::sample_logits(logits.data(), static_cast<int64_t>(logits.size()), temperature, top_p, top_k, rng);
        ASSERT_TRUE(t >= 0 && t < static_cast<int32_t>(logits.size()));
        ++counts[t];
    }
    double worst = 0.0;
    size_t worst_id = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        const double f = double(counts[i]) / draws;
        if (expected[i] == 0.0) {
            ASSERT_EQ(counts[i], 0) << "token " << i << " is outside the filtered support (T=" << temperature
                                    << " top_p=" << top_p << " top_k=" << top_k << ")";
            continue;
        }
        const double tol = 5.0 * std::sqrt(expected[i] * (1.0 - expected[i]) / draws) + 3.0 / draws;
        const double dev = std::abs(f - expected[i]);
        if (dev / tol > worst) {
            worst = dev / tol;
            worst_id = i;
        }
    }
    EXPECT_LE(worst, 1.0) << "worst token " << worst_id << ": frequency " << double(counts[worst_id]) / draws
                          << " vs expected " << expected[worst_id] << " (T=" << temperature << " top_p=" << top_p
                          << " top_k=" << top_k << ")";
}

int32_t argmax(const std::vector<float>& l) {
    return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

}  // namespace

TEST(SamplerLogits, GreedyCases) {
    const auto logits = random_logits(65536, 3.0f, 1);
    std::mt19937_64 rng(123);
    for (int k = 0; k < 20; ++k) {
        EXPECT_EQ(aviary::sample_logits(logits.data(), 65536, 0.0f, 0.85f, 0, rng), argmax(logits));  // T = 0
        EXPECT_EQ(aviary::sample_logits(logits.data(), 65536, 1.0f, 0.0f, 0, rng), argmax(logits));   // top_p = 0
        EXPECT_EQ(aviary::sample_logits(logits.data(), 65536, 0.7f, 1.0f, 1, rng), argmax(logits));   // top_k = 1
    }
}

TEST(SamplerLogits, DistributionMatchesReference) {
    // top_p = 0.999 rather than 1.0: at 1.0 the fp32 cumsum may end just below 1 and the official code
    // then turns greedy (spec §6.2), which hinges on the last ulp of the softmax.
    const auto logits = random_logits(300, 1.5f, 2);
    const struct {
        float temperature, top_p;
        int top_k;
    } configs[] = {{1.0f, 0.999f, 0},  {1.0f, 0.85f, 0},  {0.7f, 0.9f, 0}, {1.5f, 0.5f, 0},
                   {1.0f, 0.999f, 20}, {2.0f, 0.95f, 50}, {0.5f, 0.3f, 0}};
    uint64_t seed = 10;
    for (const auto& c : configs) expect_distribution(logits, c.temperature, c.top_p, c.top_k, 40000, seed++);
    // A peaked vocabulary-size distribution (the candidates sit in the first bucket).
    auto big = random_logits(65536, 1.0f, 3);
    for (int i = 0; i < 40; ++i) big[i * 997] += 9.0f;
    expect_distribution(big, 1.0f, 0.85f, 0, 800, 99);
    expect_distribution(big, 0.8f, 0.99f, 0, 200, 98);  // the cutoff lies deep in the tail
}

TEST(SamplerLogits, TopPKeepsTiesAtTheCutoff) {
    // p = {e, 1, 1, 1} / (e + 3) = {0.475, 0.175, 0.175, 0.175}: cumsum reaches 0.6 at index 1, cutoff 0.175,
    // so every tied token survives (">=" since CR 7c671c9).
    const std::vector<float> logits = {1.0f, 0.0f, 0.0f, 0.0f};
    expect_distribution(logits, 1.0f, 0.6f, 0, 40000, 5);
    std::mt19937_64 rng(6);
    std::map<int32_t, int> seen;
    for (int k = 0; k < 2000; ++k) ++seen[aviary::sample_logits(logits.data(), 4, 1.0f, 0.6f, 0, rng)];
    EXPECT_EQ(seen.size(), 4u);
    // Below the first cumsum only the top token stays.
    for (int k = 0; k < 200; ++k) EXPECT_EQ(aviary::sample_logits(logits.data(), 4, 1.0f, 0.4f, 0, rng), 0);
}

TEST(SamplerLogits, TopKKeepsTheLargest) {
    const std::vector<float> logits = {0.1f, 3.0f, -1.0f, 2.0f, 2.5f, 0.0f};
    std::mt19937_64 rng(8);
    for (int k = 0; k < 500; ++k) {
        const int32_t t = aviary::sample_logits(logits.data(), 6, 1.0f, 0.999f, 2, rng);
        EXPECT_TRUE(t == 1 || t == 4) << t;
    }
    expect_distribution(logits, 1.0f, 0.999f, 3, 50000, 9);
    expect_distribution(logits, 1.0f, 0.999f, 6, 50000, 10);  // top_k == V: off
}

TEST(SamplerLogits, TemperatureActsOnFilteredProbabilities) {
    // top_p picks the survivors before the temperature: a hot temperature must not widen the set,
    // unlike softmax(logits / T) followed by top_p.
    const std::vector<float> logits = {2.0f, 1.5f, 0.0f, -0.5f, -1.0f};
    const auto expected = reference_distribution(logits, 5.0f, 0.7f, 0);
    EXPECT_GT(expected[1], 0.0);
    EXPECT_EQ(expected[2], 0.0);
    expect_distribution(logits, 5.0f, 0.7f, 0, 50000, 11);
    expect_distribution(logits, 0.3f, 0.999f, 0, 50000, 12);
}

TEST(SamplerLogits, Errors) {
    std::mt19937_64 rng(1);
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> all_banned = {-inf, -inf};
    EXPECT_THROW(aviary::sample_logits(all_banned.data(), 2, 1.0f, 0.85f, 0, rng), aviary::Error);
    const std::vector<float> ok = {0.0f, 1.0f};
    EXPECT_THROW(aviary::sample_logits(ok.data(), 2, -1.0f, 0.85f, 0, rng), aviary::Error);
    EXPECT_THROW(aviary::sample_logits(ok.data(), 0, 1.0f, 0.85f, 0, rng), aviary::Error);
}

TEST(SamplerPenalties, DecayThenAddArithmetic) {
    aviary::SamplerOptions o;
    o.presence_penalty = 0.3f;
    o.frequency_penalty = 0.5f;
    o.penalty_decay = 0.9f;
    o.banned = {2};
    aviary::Sampler s(o);
    s.accept(5);
    s.accept(5);
    s.accept(7, 0.0f);
    // occurrence[5]: 1 -> 1*0.9 + 1 = 1.9 -> 1.9*0.9 = 1.71; occurrence[7] = 0 (present, weight 0).
    EXPECT_NEAR(s.occurrence(5), 1.71, 1e-6);
    EXPECT_NEAR(s.occurrence(7), 0.0, 1e-7);
    EXPECT_EQ(s.occurrence(6), -1.0f);
    std::vector<float> logits(10, 1.0f);
    s.adjust_logits(logits.data(), 10);
    EXPECT_NEAR(logits[5], 1.0 - (0.3 + 1.71 * 0.5), 1e-6);
    EXPECT_NEAR(logits[7], 1.0 - 0.3, 1e-6);  // presence applies even with weight 0 (as the official dict)
    EXPECT_EQ(logits[2], -std::numeric_limits<float>::infinity());
    EXPECT_EQ(logits[0], 1.0f);
    s.reset();
    EXPECT_EQ(s.occurrence(5), -1.0f);
}

TEST(SamplerPenalties, PenaltyChangesGreedyChoiceAndBansHold) {
    aviary::SamplerOptions o;
    o.temperature = 0.0f;
    o.presence_penalty = 0.2f;
    o.frequency_penalty = 0.2f;
    aviary::Sampler s(o);
    const std::vector<float> logits = {0.0f, 1.0f, 0.8f, 0.5f};
    EXPECT_EQ(s.sample(logits.data(), 4), 1);
    s.accept(1);  // 1 - 0.4 = 0.6 < 0.8
    EXPECT_EQ(s.sample(logits.data(), 4), 2);
    aviary::SamplerOptions b;
    b.banned = {0, 1};
    b.top_p = 1.0f;
    aviary::Sampler banned(b);
    for (int k = 0; k < 200; ++k) {
        const int32_t t = banned.sample(logits.data(), 4);
        EXPECT_TRUE(t == 2 || t == 3) << t;
    }
}

TEST(SamplerPenalties, SeededRunsRepeat) {
    const auto logits = random_logits(1000, 1.0f, 4);
    aviary::SamplerOptions o;
    o.seed = 1234;
    aviary::Sampler a(o), b(o);
    std::vector<int32_t> first;
    for (int k = 0; k < 50; ++k) {
        const int32_t ta = a.sample(logits.data(), 1000), tb = b.sample(logits.data(), 1000);
        EXPECT_EQ(ta, tb);
        a.accept(ta);
        b.accept(tb);
        first.push_back(ta);
    }
    a.reset();
    for (int k = 0; k < 50; ++k) {
        const int32_t t = a.sample(logits.data(), 1000);
        EXPECT_EQ(t, first[k]);
        a.accept(t);
    }
}

TEST(GeneratorStopMatcher, EmitsAllWithoutStops) {
    aviary::StopMatcher m;
    EXPECT_EQ(m.feed("hello "), "hello ");
    EXPECT_EQ(m.feed("world"), "world");
    EXPECT_EQ(m.flush(), "");
    EXPECT_FALSE(m.stopped());
}

TEST(GeneratorStopMatcher, PartialMatchesAcrossPieces) {
    aviary::StopMatcher m({"\n\nUser:", "END"});
    std::string out;
    out += m.feed("Hi there.\n");  // "\n" may start "\n\nUser:": held
    EXPECT_EQ(out, "Hi there.");
    out += m.feed("\nUs");  // still a prefix
    EXPECT_EQ(out, "Hi there.");
    out += m.feed("a");  // "\n\nUsa" resolves: not a stop
    EXPECT_EQ(out, "Hi there.\n\nUsa");
    out += m.feed("ge E");
    EXPECT_EQ(out, "Hi there.\n\nUsage ");
    out += m.feed("N");
    out += m.feed("D and more");  // completes "END": nothing from it onwards
    EXPECT_EQ(out, "Hi there.\n\nUsage ");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.feed("later"), "");
    EXPECT_EQ(m.flush(), "");
}

TEST(GeneratorStopMatcher, EarliestStopWinsAndFlushReturnsHeld) {
    aviary::StopMatcher m({"cd", "bcx"});
    EXPECT_EQ(m.feed("abcd"), "ab");  // "bcx" could not complete; "cd" completes at 2
    aviary::StopMatcher n(std::vector<std::string>{"xyz"});
    EXPECT_EQ(n.feed("abxy"), "ab");
    EXPECT_EQ(n.flush(), "xy");
    aviary::StopMatcher o(std::vector<std::string>{"aab"});
    EXPECT_EQ(o.feed("aaa"), "a");  // longest held suffix "aa"
    EXPECT_EQ(o.feed("b"), "");
    EXPECT_TRUE(o.stopped());
}

TEST(GeneratorTextStream, MultiByteCharactersSplitAcrossTokens) {
    aviary::TextStream s;
    EXPECT_EQ(s.push("a\xE4"), "a");  // 中 = E4 B8 AD
    EXPECT_EQ(s.push("\xB8"), "");
    EXPECT_EQ(s.push("\xAD\xF0\x9F"), "\xE4\xB8\xAD");  // 😀 = F0 9F 98 80
    EXPECT_EQ(s.push("\x98\x80!"), "\xF0\x9F\x98\x80!");
    EXPECT_EQ(s.finish(), "");
}

TEST(GeneratorTextStream, InvalidBytesBecomeReplacementAndStopsApply) {
    aviary::TextStream s(std::vector<std::string>{"\xE4\xB8\xAD"});  // stop at 中
    EXPECT_EQ(s.push("x\xFF"
                     "y"),
              "x\xEF\xBF\xBDy");  // 0xFF can never be valid
    EXPECT_EQ(s.push("z\xE4\xB8"), "z");
    EXPECT_EQ(s.push("\xAD tail"), "");
    EXPECT_TRUE(s.stopped());
    aviary::TextStream t;
    EXPECT_EQ(t.push("ok\xE4\xB8"), "ok");
    EXPECT_EQ(t.finish(), "\xEF\xBF\xBD");  // truncated character at the end
}

TEST(GeneratorPenaltyWeight, OfficialSubstringRule) {
    // Python: `ttt in ' \t0123456789'`.
    EXPECT_EQ(aviary::official_penalty_weight(" "), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight("\t"), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight("7"), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight("345"), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight(" \t0"), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight(""), 0.0f);
    EXPECT_EQ(aviary::official_penalty_weight("35"), 1.0f);  // not consecutive
    EXPECT_EQ(aviary::official_penalty_weight("  "), 1.0f);
    EXPECT_EQ(aviary::official_penalty_weight("\n"), 1.0f);
    EXPECT_EQ(aviary::official_penalty_weight("a"), 1.0f);
}

TEST(GeneratorGenerate, EmptyPromptIsAnError) {
    aviary::Model model;
    aviary::State state;
    const auto tok = aviary::WorldTokenizer::load(aviary::WorldTokenizer::default_vocab_path());
    EXPECT_THROW(aviary::generate(model, tok, state, "", {}), aviary::Error);
}

// SequenceGenerator on hand-made logits (byte tokenizer, greedy): the token with the largest logit is the one
// returned, end ids end the sequence without being returned, max_tokens and stop sequences end it after the token.
namespace {
std::vector<float> one_hot(int id, int n = 256) {
    std::vector<float> l(size_t(n), 0.0f);
    l[size_t(id)] = 10.0f;
    return l;
}
aviary::GenerateOptions greedy(int max_tokens) {
    aviary::GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampler.temperature = 0.0f;
    o.sampler.presence_penalty = o.sampler.frequency_penalty = 0.0f;
    return o;
}
}  // namespace

TEST(GeneratorSequence, MaxTokensEndsAfterTheLastTokenIsReturned) {
    const aviary::ByteTokenizer tok;
    std::string streamed;
    aviary::GenerateCallbacks cb;
    cb.on_text = [&](const std::string& s) { streamed += s; };
    std::vector<int32_t> seen;
    cb.on_token = [&](int32_t t, const std::string&) { seen.push_back(t); };
    aviary::SequenceGenerator seq(tok, greedy(3), cb);
    const char* word = "abc";
    for (int i = 0; i < 3; ++i) {
        ASSERT_FALSE(seq.finished());
        EXPECT_EQ(seq.next(one_hot(word[i]).data(), 256), word[i]);
    }
    EXPECT_TRUE(seq.finished());
    EXPECT_EQ(seq.next(one_hot('d').data(), 256), -1);
    const aviary::GenerateResult r = seq.finish();
    EXPECT_EQ(r.text, "abc");
    EXPECT_EQ(streamed, "abc");
    EXPECT_EQ(r.stop_reason, "max_tokens");
    EXPECT_EQ(seen, (std::vector<int32_t>{'a', 'b', 'c'}));
}

TEST(GeneratorSequence, EndIdsAreNeitherReturnedNorEmitted) {
    const aviary::ByteTokenizer tok;  // ends at 0 and at EOS 3
    aviary::SequenceGenerator seq(tok, greedy(10));
    EXPECT_EQ(seq.next(one_hot('x').data(), 256), 'x');
    EXPECT_EQ(seq.next(one_hot(aviary::ByteTokenizer::kEos).data(), 256), -1);
    const aviary::GenerateResult r = seq.finish();
    EXPECT_EQ(r.stop_reason, "end_of_text");
    EXPECT_EQ(r.text, "x");
    EXPECT_EQ(r.tokens, (std::vector<int32_t>{'x'}));
    // With stop_at_end_of_text off, an end id is an ordinary (empty) token.
    auto o = greedy(2);
    o.stop_at_end_of_text = false;
    aviary::SequenceGenerator keep(tok, o);
    EXPECT_EQ(keep.next(one_hot(aviary::ByteTokenizer::kEos).data(), 256), aviary::ByteTokenizer::kEos);
}

// GenerateOptions::end_ids replaces the tokenizer's end ids: ABC tunes end at EOS 3 only (music/run.py), so the
// pad 0 the byte tokenizer would end at is returned and fed like any other byte.
TEST(GeneratorSequence, EndIdsOptionReplacesTheTokenizers) {
    const aviary::ByteTokenizer tok;
    auto o = greedy(10);
    o.end_ids = {aviary::ByteTokenizer::kEos};
    aviary::SequenceGenerator seq(tok, o);
    EXPECT_EQ(seq.next(one_hot(0).data(), 256), 0);
    EXPECT_EQ(seq.next(one_hot('y').data(), 256), 'y');
    EXPECT_EQ(seq.next(one_hot(aviary::ByteTokenizer::kEos).data(), 256), -1);
    const aviary::GenerateResult r = seq.finish();
    EXPECT_EQ(r.stop_reason, "end_of_text");
    EXPECT_EQ(r.tokens, (std::vector<int32_t>{0, 'y'}));
    EXPECT_EQ(r.text, "y");
    o.end_ids = {'q'};  // any id, also one the tokenizer prints
    aviary::SequenceGenerator other(tok, o);
    EXPECT_EQ(other.next(one_hot(aviary::ByteTokenizer::kEos).data(), 256), aviary::ByteTokenizer::kEos);
    EXPECT_EQ(other.next(one_hot('q').data(), 256), -1);
}

// A Sampler without penalties or bans draws exactly what sample_logits draws from a generator seeded the same way
// (what music generation relied on before it went through SequenceGenerator): same ids over many steps of random
// logits, with accept() between steps, for the music settings (T=1, top-k 8, top-p 0.8) and two others.
TEST(Sampler, WithoutPenaltiesDrawsAsSampleLogits) {
    struct Setting {
        float temperature, top_p;
        int top_k;
    };
    for (const Setting& st : {Setting{1.0f, 0.8f, 8}, Setting{0.7f, 0.95f, 0}, Setting{1.3f, 1.0f, 40}}) {
        aviary::SamplerOptions so;
        so.temperature = st.temperature, so.top_p = st.top_p, so.top_k = st.top_k;
        so.presence_penalty = so.frequency_penalty = 0.0f;
        so.seed = 1234;
        aviary::Sampler sampler(so);
        std::mt19937_64 rng(so.seed);
        std::mt19937 data_rng(99);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        std::vector<float> logits(256);
        int differ = 0;
        for (int step = 0; step < 400; ++step) {
            for (float& l : logits) l = normal(data_rng);
            const int32_t a = sampler.sample(logits.data(), 256);
            const int32_t b = aviary::sample_logits(logits.data(), 256, st.temperature, st.top_p, st.top_k, rng);
            differ += a != b;
            sampler.accept(a);
        }
        EXPECT_EQ(differ, 0) << "T " << st.temperature << " top-p " << st.top_p << " top-k " << st.top_k;
    }
}

TEST(GeneratorSequence, StopSequenceEndsTheSequenceAndIsNotEmitted) {
    const aviary::ByteTokenizer tok;
    auto o = greedy(100);
    o.stop = {"\n\n"};
    aviary::SequenceGenerator seq(tok, o);
    for (char c : std::string("hi\n")) EXPECT_EQ(seq.next(one_hot(c).data(), 256), c);
    EXPECT_FALSE(seq.finished());
    EXPECT_EQ(seq.next(one_hot('\n').data(), 256), '\n');  // returned (the state covers it), then finished
    EXPECT_TRUE(seq.finished());
    const aviary::GenerateResult r = seq.finish();
    EXPECT_EQ(r.text, "hi");
    EXPECT_EQ(r.stop_reason, "stop_sequence");
    EXPECT_EQ(r.tokens.size(), 4u);
}

TEST(GeneratorSequence, StopAndZeroMaxTokens) {
    const aviary::ByteTokenizer tok;
    aviary::SequenceGenerator none(tok, greedy(0));
    EXPECT_TRUE(none.finished());
    EXPECT_EQ(none.next(one_hot('a').data(), 256), -1);
    aviary::SequenceGenerator seq(tok, greedy(5));
    seq.next(one_hot('a').data(), 256);
    seq.stop("cancelled");
    seq.stop("stopped");  // the first reason stays
    EXPECT_EQ(seq.finish().stop_reason, "cancelled");
}

TEST(Tokenizers, ByteTokenBytesAndChoiceByVocabularySize) {
    const aviary::ByteTokenizer b;
    EXPECT_EQ(b.token_bytes('A'), "A");
    EXPECT_EQ(b.token_bytes(aviary::ByteTokenizer::kEos), "");
    EXPECT_EQ(b.token_bytes(255), std::string(1, char(255)));
    EXPECT_THROW(b.token_bytes(256), aviary::Error);
    EXPECT_THROW(b.token_bytes(-1), aviary::Error);
    EXPECT_EQ(aviary::make_tokenizer("auto", 256)->kind(), "byte");
    EXPECT_EQ(aviary::make_tokenizer("auto", 65536)->kind(), "world");
    EXPECT_EQ(aviary::make_tokenizer("byte", 65536)->kind(), "byte");
    EXPECT_EQ(aviary::make_tokenizer("world", 65536)->vocab_size(), 65530);
    EXPECT_EQ(aviary::make_tokenizer("auto", 512)->kind(), "world");  // a small World-vocabulary test model
    EXPECT_EQ(aviary::make_tokenizer("auto", 257)->kind(), "world");
    try {
        aviary::make_tokenizer("world", 256);
        FAIL() << "a World tokenizer for a 256-id model must be refused";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find("--tokenizer byte"), std::string::npos) << e.what();
    }
    EXPECT_THROW(aviary::make_tokenizer("bpe", 256), aviary::Error);
}

// Only ids the tokenizer can spell are drawn: a byte tokenizer on a 300-id model never returns an id above 255.
TEST(GeneratorSequence, DrawsOnlyIdsTheTokenizerCanSpell) {
    const aviary::ByteTokenizer tok;
    std::vector<float> logits(300, 0.0f);
    logits[280] = 50.0f;  // beyond the byte range: the model's favourite
    logits['q'] = 5.0f;
    aviary::SequenceGenerator seq(tok, greedy(1));
    EXPECT_EQ(seq.next(logits.data(), 300), 'q');
}
