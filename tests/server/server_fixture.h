// Helpers of the server tests: servers on an ephemeral loopback port over the shipped small models, an HTTP client
// that sends JSON (with the test API key), and a parser of server-sent-event bodies.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aviary/server/server.h"

namespace aviary::test {

using nlohmann::json;

inline std::string asset_model(const std::string& name) {
    return std::string(AVIARY_SOURCE_DIR) + "/assets/models/" + name;
}
inline const std::string kTextModel = "music-eagle-L6-D256";  // 256-id byte-level RWKV-5 (byte tokenizer)
inline const std::string kVisionModel = "vision-demo-rwkv6-L3-D64-vit-L3-D64h4-p8-64px";
inline const std::string kAudioModel = "audio-rwkv-tiny-synth";
inline const std::string kKey = "test-key-123";

// The text model only, on an ephemeral port, started; `tweak` adjusts the options first.
template <class Tweak>
std::unique_ptr<server::Server> start_server(Tweak tweak) {
    server::ServerOptions o;
    o.model_path = asset_model(kTextModel + ".safetensors");
    o.port = 0;
    o.http_threads = 24;
    tweak(o);
    auto s = std::make_unique<server::Server>(o);
    s->start();
    return s;
}
inline std::unique_ptr<server::Server> start_server() {
    return start_server([](server::ServerOptions&) {});
}

struct Reply {
    int status = 0;
    std::string body;
    json j;  // parsed body (discarded when not JSON)
};

class Client {
public:
    explicit Client(int port, std::string key = "") : http_("127.0.0.1", port), key_(std::move(key)) {
        http_.set_read_timeout(120);
    }
    Reply post(const std::string& path, const std::string& body, const std::string& type = "application/json") {
        return wrap(http_.Post(path.c_str(), headers(), body, type.c_str()));
    }
    Reply post(const std::string& path, const json& body) { return post(path, body.dump()); }
    Reply get(const std::string& path) { return wrap(http_.Get(path.c_str(), headers())); }
    Reply del(const std::string& path) { return wrap(http_.Delete(path.c_str(), headers())); }
    httplib::Client& raw() { return http_; }
    httplib::Headers headers() const {
        return key_.empty() ? httplib::Headers{} : httplib::Headers{{"Authorization", "Bearer " + key_}};
    }

private:
    static Reply wrap(const httplib::Result& r) {
        Reply out;
        if (!r) {
            ADD_FAILURE() << "no HTTP response: " << httplib::to_string(r.error());
            return out;
        }
        out.status = r->status;
        out.body = r->body;
        out.j = json::parse(r->body, nullptr, false);
        return out;
    }
    httplib::Client http_;
    std::string key_;
};

// "data: {...}\n\n" events of an SSE body, in order; the final "[DONE]" is returned as the string "[DONE]". Fails
// the test on any line that is not an event, or an event not ended by a blank line.
inline std::vector<std::string> sse_events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
        const size_t end = body.find("\n\n", pos);
        if (end == std::string::npos) {
            ADD_FAILURE() << "an SSE event is not ended by a blank line: " << body.substr(pos, 200);
            break;
        }
        const std::string event = body.substr(pos, end - pos);
        if (event.rfind("data: ", 0) != 0 || event.find('\n') != std::string::npos) {
            ADD_FAILURE() << "not a one-line 'data: ' event: " << event.substr(0, 200);
            break;
        }
        out.push_back(event.substr(6));
        pos = end + 2;
    }
    return out;
}

// The text of a stream: choices[0].delta.content (chat) or choices[0].text (completions) of every chunk.
inline std::string sse_text(const std::vector<std::string>& events) {
    std::string text;
    for (const auto& e : events) {
        if (e == "[DONE]") continue;
        const json j = json::parse(e);
        if (!j.contains("choices") || j["choices"].empty()) continue;
        const json& c = j["choices"][0];
        if (c.contains("delta") && c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
        if (c.contains("text")) text += c["text"].get<std::string>();
    }
    return text;
}

}  // namespace aviary::test
