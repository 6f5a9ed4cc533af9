// HTTP API tests (apps/server/http_api.cpp) against a real server on loopback: response shapes of /v1/models,
// /v1/completions and /v1/chat/completions, SSE framing, agreement with core generate(), authentication, every class
// of bad request (status, error object, the server still serving), named states, time limit and shutdown.
#include <thread>

#include "aviary/core/generator.h"
#include "aviary/core/model.h"
#include "aviary/core/tokenizer.h"
#include "server_fixture.h"

namespace aviary::test {
namespace {

class HttpApi : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        server_ = start_server([](server::ServerOptions& o) {
                      o.api_key = kKey;
                      o.max_body_bytes = 1 << 20;
                      o.max_tokens = 300;
                  }).release();
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    Client client() { return Client(server_->port(), kKey); }
    static server::Server* server_;
};
server::Server* HttpApi::server_ = nullptr;

void expect_error(const Reply& r, int status, const std::string& param, const std::string& code = "") {
    EXPECT_EQ(r.status, status) << r.body;
    ASSERT_TRUE(r.j.is_object() && r.j.contains("error")) << r.body;
    const json& e = r.j["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.body;
    EXPECT_TRUE(e["type"].is_string()) << r.body;
    if (param.empty()) {
        EXPECT_TRUE(e["param"].is_null()) << r.body;
    } else {
        EXPECT_EQ(e["param"], param) << r.body;
    }
    if (!code.empty()) {
        EXPECT_EQ(e["code"], code) << r.body;
    }
}

TEST_F(HttpApi, ModelsAndHealth) {
    auto c = client();
    const Reply m = c.get("/v1/models");
    ASSERT_EQ(m.status, 200) << m.body;
    EXPECT_EQ(m.j["object"], "list");
    ASSERT_EQ(m.j["data"].size(), 1u);
    EXPECT_EQ(m.j["data"][0]["id"], kTextModel);
    EXPECT_EQ(m.j["data"][0]["object"], "model");
    EXPECT_EQ(c.get("/v1/models/" + kTextModel).status, 200);
    expect_error(c.get("/v1/models/gpt-4"), 404, "model", "model_not_found");
    const Reply h = c.get("/health");
    ASSERT_EQ(h.status, 200);
    EXPECT_EQ(h.j["status"], "ok");
    EXPECT_TRUE(h.j["stats"]["requests"].is_number_integer());
}

TEST_F(HttpApi, CompletionMatchesCoreGenerate) {
    auto c = client();
    const std::string prompt = "X:1\nT:Test\nK:G\n";
    const Reply r = c.post("/v1/completions", json{{"model", kTextModel},
                                                   {"prompt", prompt},
                                                   {"max_tokens", 40},
                                                   {"seed", 7},
                                                   {"temperature", 0.9},
                                                   {"top_p", 0.9}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["object"], "text_completion");
    EXPECT_EQ(r.j["model"], kTextModel);
    EXPECT_TRUE(r.j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
    ASSERT_EQ(r.j["choices"].size(), 1u);
    const json& choice = r.j["choices"][0];
    EXPECT_EQ(choice["index"], 0);
    EXPECT_EQ(r.j["usage"]["prompt_tokens"], prompt.size());  // byte tokenizer: one id per byte
    EXPECT_EQ(r.j["usage"]["total_tokens"],
              r.j["usage"]["prompt_tokens"].get<int>() + r.j["usage"]["completion_tokens"].get<int>());
    EXPECT_TRUE(r.j["usage"]["prompt_tokens_details"]["cached_tokens"].is_number_integer());

    // The same generation through core generate() (the single-sequence loop) gives the same text.
    ModelOptions mo;
    mo.dtype = "auto";
    Model model = Model::load(asset_model(kTextModel + ".safetensors"), mo);
    model.train(false);
    ByteTokenizer tok;
    GenerateOptions g;
    g.max_tokens = 40;
    g.sampler.seed = 7;
    g.sampler.temperature = 0.9f;
    g.sampler.top_p = 0.9f;
    State state = model.new_state(1);
    const GenerateResult expected = generate(model, tok, state, prompt, g);
    EXPECT_EQ(choice["text"], expected.text);
    EXPECT_EQ(r.j["usage"]["completion_tokens"], expected.tokens.size());
    EXPECT_EQ(choice["finish_reason"], expected.stop_reason == "max_tokens" ? "length" : "stop");
}

TEST_F(HttpApi, StreamingIsServerSentEventsWithTheSameText) {
    auto c = client();
    for (const bool chat : {false, true}) {
        SCOPED_TRACE(chat ? "chat" : "completions");
        json body{{"max_tokens", 30}, {"seed", 3}, {"temperature", 1.0}};
        if (chat) {
            body["messages"] = json::array(
                {{{"role", "system"}, {"content", "You write tunes."}}, {{"role", "user"}, {"content", "X:1\nK:D"}}});
        } else {
            body["prompt"] = "X:2\nK:A\n";
        }
        const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
        const Reply whole = c.post(path, body);
        ASSERT_EQ(whole.status, 200) << whole.body;
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
        const Reply s = c.post(path, body);
        ASSERT_EQ(s.status, 200) << s.body;
        const auto events = sse_events(s.body);
        ASSERT_GE(events.size(), 3u) << s.body;
        EXPECT_EQ(events.back(), "[DONE]");
        const json first = json::parse(events.front());
        EXPECT_EQ(first["object"], chat ? "chat.completion.chunk" : "text_completion");
        if (chat) {
            EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
        }
        // The chunk before the usage chunk carries the finish reason; the usage chunk has no choices.
        const json usage = json::parse(events[events.size() - 2]);
        EXPECT_TRUE(usage["choices"].empty());
        EXPECT_EQ(usage["usage"]["completion_tokens"], whole.j["usage"]["completion_tokens"]);
        const json last = json::parse(events[events.size() - 3]);
        EXPECT_EQ(last["choices"][0]["finish_reason"], whole.j["choices"][0]["finish_reason"]);
        for (size_t i = 0; i + 3 < events.size(); ++i)
            EXPECT_TRUE(json::parse(events[i])["choices"][0]["finish_reason"].is_null()) << events[i];
        const std::string text = chat ? whole.j["choices"][0]["message"]["content"].get<std::string>()
                                      : whole.j["choices"][0]["text"].get<std::string>();
        EXPECT_EQ(sse_text(events), text);
        if (chat) {
            EXPECT_EQ(whole.j["object"], "chat.completion");
            EXPECT_EQ(whole.j["choices"][0]["message"]["role"], "assistant");
            EXPECT_TRUE(text.empty() || (text[0] != ' ' && text[0] != '\n')) << text;
            EXPECT_EQ(text.find("\n\n"), std::string::npos) << "the chat reply runs past a blank line";
        }
    }
}

TEST_F(HttpApi, StopSequencesEndTheText) {
    auto c = client();
    json body{{"prompt", "X:1\nT:A\nM:4/4\nK:G\n"}, {"max_tokens", 120}, {"seed", 11}};
    const Reply free_run = c.post("/v1/completions", body);
    ASSERT_EQ(free_run.status, 200);
    const std::string text = free_run.j["choices"][0]["text"];
    ASSERT_GT(text.size(), 4u);
    const std::string stop = text.substr(text.size() / 2, 2);  // occurs in the text
    body["stop"] = json::array({stop, "@@never@@"});
    const Reply stopped = c.post("/v1/completions", body);
    ASSERT_EQ(stopped.status, 200);
    EXPECT_EQ(stopped.j["choices"][0]["text"], text.substr(0, text.find(stop)));
    EXPECT_EQ(stopped.j["choices"][0]["finish_reason"], "stop");
}

TEST_F(HttpApi, AuthenticationIsRequired) {
    Client anonymous(server_->port());
    expect_error(anonymous.get("/v1/models"), 401, "", "invalid_api_key");
    expect_error(anonymous.post("/v1/completions", json{{"prompt", "X"}}), 401, "", "invalid_api_key");
    Client wrong(server_->port(), "test-key-124");
    expect_error(wrong.get("/health"), 401, "", "invalid_api_key");
    Client prefix(server_->port(), "test-key-12");
    expect_error(prefix.get("/health"), 401, "", "invalid_api_key");
    EXPECT_EQ(client().get("/health").status, 200);
}

TEST_F(HttpApi, BadRequestsGetErrorObjects) {
    auto c = client();
    expect_error(c.post("/v1/completions", std::string("{\"prompt\": \"X\",")), 400, "", "invalid_json");
    expect_error(c.post("/v1/completions", std::string("[1, 2]")), 400, "", "invalid_json");
    expect_error(c.post("/v1/completions", std::string("\xff\xfe")), 400, "", "invalid_json");
    expect_error(c.post("/v1/completions", json{{"max_tokens", 3}}), 400, "prompt");
    expect_error(c.post("/v1/completions", json{{"prompt", 5}}), 400, "prompt");
    expect_error(c.post("/v1/completions", json{{"prompt", json::array({"a", "b"})}}), 400, "prompt");
    expect_error(c.post("/v1/completions", json{{"prompt", ""}}), 400, "prompt");
    expect_error(c.post("/v1/completions", json{{"prompt", json::array({1, 300})}}), 400, "prompt");  // > vocab
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"temperature", "hot"}}), 400, "temperature");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"top_p", 1.5}}), 400, "top_p");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"top_k", 2.5}}), 400, "top_k");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"max_tokens", 0}}), 400, "max_tokens");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"max_tokens", 301}}), 400, "max_tokens");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"max_tokens", "9"}}), 400, "max_tokens");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"seed", 1.5}}), 400, "seed");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"stop", 5}}), 400, "stop");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"stop", json::array({"a", 1})}}), 400, "stop");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"stream", "yes"}}), 400, "stream");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"n", 2}}), 400, "n");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"presence_penalty", 1e9}}), 400, "presence_penalty");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"model", "gpt-4"}}), 404, "model", "model_not_found");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"model", 7}}), 400, "model");
    expect_error(c.post("/v1/chat/completions", json{{"messages", "hi"}}), 400, "messages");
    expect_error(c.post("/v1/chat/completions", json::object()), 400, "messages");
    expect_error(c.post("/v1/chat/completions", json{{"messages", json::array()}}), 400, "messages");
    expect_error(c.post("/v1/chat/completions", json{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400,
                 "messages");
    expect_error(c.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", 3}}}}}), 400,
                 "messages");
    expect_error(c.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "  \n "}}}}}), 400,
                 "messages");
    // An image for a server without a vision model.
    const json image_msg = {
        {"role", "user"},
        {"content",
         json::array({{{"type", "text"}, {"text", "What is it?"}},
                      {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBORw0KGgo="}}}}})}};
    expect_error(c.post("/v1/chat/completions", json{{"messages", {image_msg}}}), 400, "messages", "no_vision_model");
    expect_error(c.post("/v1/audio/tags", json{{"audio", "AAAA"}}), 400, "model", "no_audio_model");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"load_state", "nope"}}), 404, "load_state",
                 "state_not_found");
    expect_error(c.post("/v1/completions", json{{"prompt", "X"}, {"save_state", "bad id!"}}), 400, "save_state");
    // Over the body limit (1 MiB here): 413 with an error object.
    expect_error(c.post("/v1/completions", json{{"prompt", std::string(2 << 20, 'a')}}), 413, "", "request_too_large");
    expect_error(c.get("/v1/nothing"), 404, "", "not_found");
    // Still serving.
    const Reply ok = c.post("/v1/completions", json{{"prompt", "X:1\n"}, {"max_tokens", 2}});
    EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(HttpApi, NamedStatesContinueAConversation) {
    auto c = client();
    json turn1{{"messages", {{{"role", "user"}, {"content", "X:1\nK:G"}}}},
               {"max_tokens", 20},
               {"seed", 5},
               {"save_state", "conv-1"}};
    const Reply r1 = c.post("/v1/chat/completions", turn1);
    ASSERT_EQ(r1.status, 200) << r1.body;
    const Reply list = c.get("/v1/states");
    ASSERT_EQ(list.status, 200);
    bool found = false;
    for (const auto& s : list.j["data"]) {
        if (s["id"] != "conv-1") continue;
        found = true;
        // The state covers the prompt and every generated token.
        EXPECT_EQ(s["tokens"],
                  r1.j["usage"]["prompt_tokens"].get<int>() + r1.j["usage"]["completion_tokens"].get<int>());
    }
    EXPECT_TRUE(found) << list.body;
    json turn2{{"messages", {{{"role", "user"}, {"content", "T:Second"}}}},
               {"max_tokens", 10},
               {"seed", 5},
               {"load_state", "conv-1"}};
    const Reply r2 = c.post("/v1/chat/completions", turn2);
    ASSERT_EQ(r2.status, 200) << r2.body;
    EXPECT_EQ(r2.j["usage"]["prompt_tokens"], std::string("User: T:Second\n\nAssistant:").size());
    // The same two turns through core generate(), the state carried over as `aviary chat` does (chat defaults of the
    // server: top-p 0.3, penalties 0.5/0.5 weighted 1, token 0 banned, stop at a blank line).
    ModelOptions mo;
    mo.dtype = "auto";
    Model model = Model::load(asset_model(kTextModel + ".safetensors"), mo);
    model.train(false);
    ByteTokenizer tok;
    GenerateOptions g;
    g.sampler.top_p = 0.3f;
    g.sampler.presence_penalty = g.sampler.frequency_penalty = 0.5f;
    g.sampler.banned = {0};
    g.stop = {"\n\n"};
    g.official_penalty_weights = false;
    g.sampler.seed = 5;
    g.max_tokens = 20;
    State state = model.new_state(1);
    const auto a1 = generate(model, tok, state, "User: X:1\nK:G\n\nAssistant:", g);
    g.max_tokens = 10;
    const auto a2 = generate(model, tok, state, "User: T:Second\n\nAssistant:", g);
    auto strip = [](std::string t) { return t.erase(0, t.find_first_not_of(" \t\n")); };
    EXPECT_EQ(r1.j["choices"][0]["message"]["content"], strip(a1.text));
    EXPECT_EQ(r2.j["choices"][0]["message"]["content"], strip(a2.text));
    EXPECT_EQ(c.del("/v1/states/conv-1").status, 200);
    expect_error(c.del("/v1/states/conv-1"), 404, "id", "state_not_found");
    expect_error(c.post("/v1/chat/completions", turn2), 404, "load_state", "state_not_found");
}

TEST(HttpApiLifecycle, TimeLimitEndsALongGeneration) {
    auto srv = start_server([](server::ServerOptions& o) { o.request_timeout_s = 0.3; });
    Client c(srv->port());
    const auto t0 = std::chrono::steady_clock::now();
    const Reply r = c.post("/v1/completions",
                           json{{"prompt", "X:1\n"}, {"max_tokens", 4000}, {"ignore_eos", true}, {"temperature", 2.0}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["choices"][0]["finish_reason"], "time_limit");
    EXPECT_LT(r.j["usage"]["completion_tokens"].get<int>(), 4000);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

TEST(HttpApiLifecycle, StopEndsStreamsCleanly) {
    auto srv = start_server([](server::ServerOptions& o) { o.max_tokens = 100000; });
    Client c(srv->port());
    std::string body;
    bool got_text = false;
    std::thread streamer([&] {
        const std::string req = json{
            {"prompt", "X:1\n"},
            {"max_tokens", 100000},
            {"stream", true},
            {"ignore_eos", true},
            {"temperature", 2.0}}.dump();
        httplib::Request r;
        r.method = "POST";
        r.path = "/v1/completions";
        r.headers = {{"Content-Type", "application/json"}};
        r.body = req;
        r.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
            body.append(data, n);
            got_text = true;
            return true;
        };
        c.raw().send(r);
    });
    for (int i = 0; i < 500 && !got_text; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    srv->stop();
    streamer.join();
    const auto events = sse_events(body);
    ASSERT_GE(events.size(), 2u) << body.substr(0, 300);
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "cancelled");
}

TEST(HttpApiLifecycle, AClientThatGoesAwayCancelsItsGeneration) {
    auto srv = start_server([](server::ServerOptions& o) { o.max_tokens = 100000; });
    Client c(srv->port());
    httplib::Request r;
    r.method = "POST";
    r.path = "/v1/completions";
    r.headers = {{"Content-Type", "application/json"}};
    r.body =
        json{{"prompt", "X:1\n"}, {"max_tokens", 100000}, {"stream", true}, {"ignore_eos", true}, {"temperature", 2.0}}
            .dump();
    int chunks = 0;
    r.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };  // hang up
    c.raw().send(r);
    // The generation ends without running to 100000 tokens, and the server goes on serving.
    server::ServerStats s{};
    for (int i = 0; i < 1000; ++i) {
        s = srv->stats();
        if (s.requests >= 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(s.requests, 1);
    EXPECT_LT(s.decoded_tokens, 100000);
    EXPECT_EQ(c.get("/health").status, 200);
}

}  // namespace
}  // namespace aviary::test
