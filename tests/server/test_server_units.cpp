// Unit tests of the server's pieces without HTTP: base64 (base64.cpp), request validation (request_parse.cpp),
// chat prompt rendering (chat_prompt.cpp) and the state cache's prefix lookup and LRU budget (state_cache.cpp).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "../../apps/server/api_error.h"
#include "../../apps/server/base64.h"
#include "../../apps/server/chat_prompt.h"
#include "../../apps/server/request_parse.h"
#include "../../apps/server/state_cache.h"

namespace aviary::server {
namespace {

using nlohmann::json;

TEST(Base64, RoundTripsAndRejectsGarbage) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += char(i);
    for (size_t n : {0, 1, 2, 3, 4, 5, 255, 256}) {
        const std::string s = all.substr(0, n);
        EXPECT_EQ(base64_decode(base64_encode(s)).value(), s) << n;
    }
    EXPECT_EQ(base64_encode("Man"), "TWFu");
    EXPECT_EQ(base64_encode("Ma"), "TWE=");
    EXPECT_EQ(base64_decode("TW\nFu").value(), "Man");
    EXPECT_EQ(base64_decode("TWE").value(), "Ma");  // padding optional
    EXPECT_FALSE(base64_decode("TW*u"));
    EXPECT_FALSE(base64_decode("TWE=u"));
    EXPECT_FALSE(base64_decode("T"));
}

std::string param_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        return e.param();
    }
    return "<no error>";
}

TEST(RequestParse, CompletionFieldsAndDefaults) {
    const auto r = parse_completion_request(json{{"prompt", "hi"},
                                                 {"temperature", 0.5},
                                                 {"top_k", 3},
                                                 {"seed", -1},
                                                 {"stop", "\n"},
                                                 {"stream", true},
                                                 {"stream_options", {{"include_usage", true}}},
                                                 {"top_p", nullptr}},
                                            {});
    EXPECT_EQ(r.prompt, "hi");
    EXPECT_FLOAT_EQ(*r.temperature, 0.5f);
    EXPECT_EQ(*r.top_k, 3);
    EXPECT_EQ(*r.seed, ~uint64_t(0));
    EXPECT_FALSE(r.top_p);  // null = not given
    EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
    EXPECT_TRUE(r.stream && r.include_usage);
    const auto ids = parse_completion_request(json{{"prompt", {5, 6, 7}}}, {});
    EXPECT_EQ(*ids.prompt_ids, (std::vector<int32_t>{5, 6, 7}));
    RequestLimits lim;
    lim.max_tokens = 10;
    EXPECT_EQ(param_of([&] {
                  parse_completion_request(json{{"prompt", "x"}, {"max_tokens", 11}}, lim);
              }),
              "max_tokens");
    EXPECT_EQ(param_of([&] { parse_completion_request(json{{"prompt", "x"}, {"seed", 1e30}}, {}); }), "seed");
    EXPECT_EQ(param_of([&] { parse_completion_request(json{{"prompt", "x"}, {"logprobs", true}}, {}); }), "logprobs");
    EXPECT_EQ(param_of([&] {
                  parse_completion_request(json{{"prompt", "x"}, {"stop", std::vector<std::string>(17, "a")}}, {});
              }),
              "stop");
    EXPECT_EQ(param_of([&] { parse_completion_request(json{{"prompt", {-1}}}, {}); }), "prompt");
    EXPECT_EQ(param_of([&] { parse_json_body("{\"a\": }"); }), "");
}

TEST(RequestParse, ChatContentParts) {
    const auto r = parse_chat_request(
        json{
            {"messages",
             {{{"role", "developer"}, {"content", "Be brief."}},
              {{"role", "user"},
               {"content", json::array({{{"type", "text"}, {"text", "What is"}},
                                        {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,TWFu"}}}},
                                        {{"type", "text"}, {"text", "this?"}}})}}}}},
        {});
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].role, "system");
    EXPECT_EQ(r.messages[1].text, "What is\nthis?");
    ASSERT_EQ(r.messages[1].images.size(), 1u);
    EXPECT_EQ(r.messages[1].images[0], "Man");
    EXPECT_TRUE(r.has_images());
    auto chat = [](json content) {
        return [content] { parse_chat_request(json{{"messages", {{{"role", "user"}, {"content", content}}}}}, {}); };
    };
    EXPECT_EQ(param_of(chat(json::array({{{"type", "audio"}}}))), "messages");
    EXPECT_EQ(param_of(chat(json::array({{{"type", "image_url"}, {"image_url", {{"url", "https://x/y.png"}}}}}))),
              "messages.content.image_url");
    EXPECT_EQ(param_of(chat(json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png,raw"}}}}}))),
              "messages.content.image_url");
    // A comma before the 7 characters of ";base64" could hold (fuzz finding: the mark's offset underflowed).
    EXPECT_EQ(param_of(chat(json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:,TWFu"}}}}}))),
              "messages.content.image_url");
    EXPECT_EQ(param_of(chat(json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:x,TWFu"}}}}}))),
              "messages.content.image_url");
    EXPECT_EQ(
        param_of(chat(json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,@@"}}}}}))),
        "messages.content.image_url");
}

TEST(ChatPrompt, WorldChatFormat) {
    std::vector<ChatMessage> m = {{"system", "You are\r\n\r\nhelpful. ", {}},
                                  {"user", " hi\n\n\nthere ", {}},
                                  {"assistant", "Hello!", {}},
                                  {"user", "", {}},
                                  {"user", "bye", {}}};
    EXPECT_EQ(render_chat_prompt(m),
              "System: You are\nhelpful.\n\nUser: hi\nthere\n\nAssistant: Hello!\n\nUser: bye\n\nAssistant:");
    EXPECT_EQ(param_of([] { render_chat_prompt({{"user", " \n", {}}}); }), "messages");
    const auto q = image_question({{"user", "What colour?", {"PNG"}}});
    EXPECT_EQ(q.question, "What colour?");
    EXPECT_EQ(q.image, "PNG");
    EXPECT_EQ(param_of([] { image_question({{"user", "a", {"1", "2"}}}); }), "messages");
    EXPECT_EQ(param_of([] { image_question({{"user", " ", {"1"}}}); }), "messages");
}

State toy_state(float v) {
    State s;
    s.att_shift.push_back(at::full({1, 4}, v));
    s.wkv.push_back(at::full({1, 1, 2, 2}, v));
    s.ffn_shift.push_back(at::full({1, 4}, v));
    return s;
}

TEST(StateCacheUnit, LongestPrefixWinsAndCopiesAreIndependent) {
    StateCache cache(1 << 20);
    cache.insert({1, 2}, toy_state(1), {0.5f});
    cache.insert({1, 2, 3, 4}, toy_state(2), {0.25f});
    cache.insert({1, 9}, toy_state(3), {0.125f});
    EXPECT_FALSE(cache.lookup({7, 1, 2}));
    EXPECT_FALSE(cache.lookup({1}));
    auto hit = cache.lookup({1, 2, 3, 4, 5});
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->tokens, (std::vector<int32_t>{1, 2, 3, 4}));
    EXPECT_EQ(hit->logits, std::vector<float>{0.25f});
    hit->state.wkv[0].fill_(99);  // the caller advances its copy
    EXPECT_EQ(cache.lookup({1, 2, 3, 4})->state.wkv[0].max().item<float>(), 2.0f);
    EXPECT_EQ(cache.lookup({1, 2, 3})->tokens, (std::vector<int32_t>{1, 2}));
}

TEST(StateCacheUnit, LeastRecentlyUsedGoesFirst) {
    const size_t one = CachedState{{1}, toy_state(0), {0.0f}}.bytes();
    StateCache cache(3 * one);
    cache.insert({1}, toy_state(1), {0.0f});
    cache.insert({2}, toy_state(2), {0.0f});
    cache.insert({3}, toy_state(3), {0.0f});
    EXPECT_TRUE(cache.lookup({1}));           // 1 is now the most recent
    cache.insert({4}, toy_state(4), {0.0f});  // evicts 2
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_LE(cache.bytes(), 3 * one);
    EXPECT_TRUE(cache.lookup({1}));
    EXPECT_FALSE(cache.lookup({2}));
    EXPECT_TRUE(cache.lookup({3}));
    EXPECT_TRUE(cache.lookup({4}));
    StateCache none(0);
    none.insert({1}, toy_state(1), {0.0f});
    EXPECT_EQ(none.size(), 0u);
}

TEST(NamedStatesUnit, SaveLoadEraseAndCapacity) {
    NamedStates named(2);
    named.save("a", toy_state(1), {1.0f}, 10);
    named.save("b", toy_state(2), {2.0f}, 20);
    EXPECT_EQ(named.load("a")->logits, std::vector<float>{1.0f});  // a is now the most recent
    named.save("c", toy_state(3), {3.0f}, 30);                     // drops b
    EXPECT_FALSE(named.load("b"));
    EXPECT_EQ(named.list(), (std::map<std::string, int64_t>{{"a", 10}, {"c", 30}}));
    EXPECT_TRUE(named.erase("a"));
    EXPECT_FALSE(named.erase("a"));
}

}  // namespace
}  // namespace aviary::server
