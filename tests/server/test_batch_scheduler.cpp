// Batch scheduler tests (apps/server/batch_scheduler.cpp, state_cache.cpp) through the HTTP API: concurrent seeded
// requests decode together and give exactly the tokens they give alone; a prompt that extends a served one prefills
// only the new tokens (usage.prompt_tokens_details.cached_tokens, the scheduler's prefill count) and gives the same
// tokens as without the cache; a conversation's second turn starts from the first turn's state.
#include <thread>

#include "server_fixture.h"

namespace aviary::test {
namespace {

json completion(const std::string& prompt, int seed, int max_tokens = 48) {
    return json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"seed", seed}, {"temperature", 1.0}, {"top_p", 0.95},
                {"top_k", 50}};
}

TEST(BatchScheduler, ConcurrentRequestsEqualTheSameRequestsAlone) {
    constexpr int kN = 7;
    auto srv = start_server([](server::ServerOptions& o) {
        o.max_batch = 8;
        o.state_cache_mb = 0;  // every request prefills its whole prompt, alone or not
    });
    std::vector<json> requests;
    for (int i = 0; i < kN; ++i) {
        // Different prompts, lengths, seeds and lengths of output: the rows join and leave the batch at different
        // steps.
        json r = completion("X:" + std::to_string(i) + "\nT:Tune " + std::string(size_t(i), 'a') + "\nK:G\n", 100 + i,
                            24 + 6 * i);
        if (i % 3 == 1) {
            r = json{{"messages", {{{"role", "user"}, {"content", "K:D " + std::to_string(i)}}}},
                     {"max_tokens", 30},
                     {"seed", i}};
        }
        requests.push_back(r);
    }
    auto path = [&](int i) {
        return requests[size_t(i)].contains("messages") ? "/v1/chat/completions" : "/v1/completions";
    };
    std::vector<Reply> alone;
    for (int i = 0; i < kN; ++i) {
        Client c(srv->port());
        alone.push_back(c.post(path(i), requests[size_t(i)]));
        ASSERT_EQ(alone.back().status, 200) << alone.back().body;
    }
    EXPECT_EQ(srv->stats().max_batch_seen, 1);

    // All at once: held until every request is queued, then admitted together.
    srv->hold_scheduling(true);
    std::vector<Reply> together(kN);
    std::vector<std::thread> threads;
    for (int i = 0; i < kN; ++i)
        threads.emplace_back([&, i] {
            Client c(srv->port());
            together[size_t(i)] = c.post(path(i), requests[size_t(i)]);
        });
    for (int i = 0; i < 1000 && srv->stats().queued < kN; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(srv->stats().queued, kN);
    srv->hold_scheduling(false);
    for (auto& t : threads) t.join();
    EXPECT_GE(srv->stats().max_batch_seen, kN - 1) << "the requests did not decode together";
    for (int i = 0; i < kN; ++i) {
        SCOPED_TRACE("request " + std::to_string(i));
        ASSERT_EQ(together[size_t(i)].status, 200) << together[size_t(i)].body;
        EXPECT_EQ(together[size_t(i)].j["choices"], alone[size_t(i)].j["choices"]);
        EXPECT_EQ(together[size_t(i)].j["usage"], alone[size_t(i)].j["usage"]);
    }
}

TEST(BatchScheduler, MoreRequestsThanTheBatchQueueAndAllFinish) {
    auto srv = start_server([](server::ServerOptions& o) { o.max_batch = 2; });
    std::vector<Reply> replies(6);
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i)
        threads.emplace_back([&, i] {
            Client c(srv->port());
            replies[size_t(i)] = c.post("/v1/completions", completion("X:" + std::to_string(i) + "\n", i, 16));
        });
    for (auto& t : threads) t.join();
    for (const auto& r : replies) EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_LE(srv->stats().max_batch_seen, 2);
    EXPECT_EQ(srv->stats().requests, 6);
}

TEST(StateCache, AnExtendedPromptPrefillsOnlyTheNewTokens) {
    auto srv = start_server();
    Client c(srv->port());
    const std::string p = "X:1\nT:The cached prefix\nM:6/8\nL:1/8\nK:Em\n";
    const std::string q = "|:E2B B2A|";
    const Reply first = c.post("/v1/completions", completion(p, 1, 8));
    ASSERT_EQ(first.status, 200);
    EXPECT_EQ(first.j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    const int64_t prefilled_before = srv->stats().prefill_tokens;
    EXPECT_EQ(prefilled_before, int64_t(p.size()));

    const Reply second = c.post("/v1/completions", completion(p + q, 2));
    ASSERT_EQ(second.status, 200);
    EXPECT_EQ(second.j["usage"]["prompt_tokens"], (p + q).size());
    EXPECT_EQ(second.j["usage"]["prompt_tokens_details"]["cached_tokens"], p.size());
    EXPECT_EQ(srv->stats().prefill_tokens - prefilled_before, int64_t(q.size())) << "only the new tokens prefill";

    // The same prompt again: all of it from the cache (its logits are kept), nothing prefilled, same answer.
    const int64_t prefilled_mid = srv->stats().prefill_tokens;
    const Reply again = c.post("/v1/completions", completion(p + q, 2));
    EXPECT_EQ(again.j["usage"]["prompt_tokens_details"]["cached_tokens"], (p + q).size());
    EXPECT_EQ(srv->stats().prefill_tokens, prefilled_mid);
    EXPECT_EQ(again.j["choices"], second.j["choices"]);

    // Without a cache the same request gives the same tokens.
    auto uncached = start_server([](server::ServerOptions& o) { o.state_cache_mb = 0; });
    Client u(uncached->port());
    const Reply plain = u.post("/v1/completions", completion(p + q, 2));
    EXPECT_EQ(plain.j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    EXPECT_EQ(uncached->stats().prefill_tokens, int64_t((p + q).size()));
    EXPECT_EQ(plain.j["choices"], second.j["choices"]);
}

TEST(StateCache, TheSecondTurnOfAConversationStartsFromTheFirst) {
    auto srv = start_server();
    Client c(srv->port());
    json messages = json::array({{{"role", "user"}, {"content", "X:1\nT:Reel\nK:D"}}});
    json req{{"messages", messages}, {"max_tokens", 24}, {"seed", 9}, {"temperature", 0}};
    const Reply t1 = c.post("/v1/chat/completions", req);
    ASSERT_EQ(t1.status, 200) << t1.body;
    const int64_t prompt1 = t1.j["usage"]["prompt_tokens"];
    const std::string reply1 = t1.j["choices"][0]["message"]["content"];
    messages.push_back({{"role", "assistant"}, {"content", reply1}});
    messages.push_back({{"role", "user"}, {"content", "T:Another"}});
    req["messages"] = messages;
    const int64_t before = srv->stats().prefill_tokens;
    const Reply t2 = c.post("/v1/chat/completions", req);
    ASSERT_EQ(t2.status, 200) << t2.body;
    const int64_t cached = t2.j["usage"]["prompt_tokens_details"]["cached_tokens"];
    const int64_t prompt2 = t2.j["usage"]["prompt_tokens"];
    // At least the first turn's prompt comes from the cache (all of the first turn when the reply re-renders to the
    // same bytes), and exactly the rest is prefilled.
    EXPECT_GE(cached, prompt1);
    EXPECT_EQ(srv->stats().prefill_tokens - before, prompt2 - cached);
    // The same second turn without a cache: the same reply.
    auto uncached = start_server([](server::ServerOptions& o) { o.state_cache_mb = 0; });
    Client u(uncached->port());
    const Reply plain = u.post("/v1/chat/completions", req);
    EXPECT_EQ(plain.j["choices"], t2.j["choices"]);
}

TEST(StateCache, EntriesStayWithinTheBudget) {
    auto srv = start_server([](server::ServerOptions& o) { o.state_cache_mb = 1; });
    Client c(srv->port());
    for (int i = 0; i < 12; ++i)
        ASSERT_EQ(c.post("/v1/completions", completion("X:" + std::to_string(i) + "\n", i, 4)).status, 200);
    const auto s = srv->stats();
    EXPECT_LE(s.cache_bytes, 1 << 20);
    EXPECT_GT(s.cache_entries, 0);
    EXPECT_LT(s.cache_entries, 24);  // two entries per request without the budget
}

}  // namespace
}  // namespace aviary::test
