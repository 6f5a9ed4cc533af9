// Image and sound requests (apps/server/media_adapter.cpp): a chat message with an image_url part is answered by the
// VisualRWKV model exactly as vision::answer_question answers it, streamed or not; /v1/audio/tags (base64 JSON or
// multipart) returns the tags audio::tag_file gives; images and sounds over the limits, or not images and sounds at
// all, are 400s that name the field.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/tagger.h"
#include "aviary/vision/image.h"
#include "aviary/vision/prompt.h"
#include "aviary/vision/visual_rwkv.h"
#include "server_fixture.h"
#include "../../apps/server/base64.h"

namespace aviary::test {
namespace {

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A 16-bit mono PCM WAV of `seconds` of a 440 Hz tone with a little noise.
std::string wav_bytes(double seconds, int rate = 16000) {
    const uint32_t n = static_cast<uint32_t>(seconds * rate);
    std::string out;
    auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [&](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
    out += "RIFF";
    u32(36 + n * 2);
    out += "WAVEfmt ";
    u32(16);
    u16(1);
    u16(1);
    u32(uint32_t(rate));
    u32(uint32_t(rate) * 2);
    u16(2);
    u16(16);
    out += "data";
    u32(n * 2);
    uint32_t seed = 1;
    for (uint32_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        const double noise = (double(seed >> 8) / double(1 << 24) - 0.5) * 0.05;
        u16(static_cast<uint16_t>(int16_t(12000 * (std::sin(2 * M_PI * 440 * i / rate) + noise))));
    }
    return out;
}

class Media : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        server_ = start_server([](server::ServerOptions& o) {
                      o.vision_model_path = asset_model(kVisionModel + ".safetensors");
                      o.audio_model_path = asset_model(kAudioModel + ".safetensors");
                      o.max_image_pixels = 100 * 100;
                      o.max_audio_seconds = 12;
                  }).release();
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    static server::Server* server_;
};
server::Server* Media::server_ = nullptr;

json image_request(const std::string& image, const std::string& question) {
    const std::string url = "data:image/png;base64," + server::base64_encode(image);
    return json{{"model", kVisionModel},
                {"max_tokens", 24},
                {"messages",
                 {{{"role", "user"},
                   {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                            {{"type", "text"}, {"text", question}}})}}}}};
}

TEST_F(Media, ImageQuestionIsAnsweredByTheVisionModel) {
    const std::string image_path = std::string(AVIARY_FIXTURES_DIR) + "/vision/demo_heldout/images/test_00000.png";
    const std::string question = "What colour is the square?";
    Client c(server_->port());
    const Reply r = c.post("/v1/chat/completions", image_request(file_bytes(image_path), question));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["model"], kVisionModel);
    const std::string answer = r.j["choices"][0]["message"]["content"];
    EXPECT_GT(r.j["usage"]["prompt_tokens"].get<int>(), 0);

    // What the vision library answers for the same file and question.
    ModelOptions mo;
    mo.dtype = "auto";
    auto model = vision::VisualRwkv::load(asset_model(kVisionModel + ".safetensors"), "", "", mo);
    const auto tokenizer = vision::tokenizer_for(model);  // as `aviary vqa` picks them
    vision::AnswerOptions o;
    o.max_tokens = 24;
    o.position = vision::image_position_for(model);
    vision::ClipPreprocess pre;
    pre.size = model.image_size();
    const auto expected =
        vision::answer_question(model, *tokenizer, vision::load_clip_image(image_path, pre), question, o);
    EXPECT_EQ(answer, expected.text);
    EXPECT_EQ(r.j["usage"]["completion_tokens"], expected.tokens);
    EXPECT_EQ(r.j["usage"]["prompt_tokens"].get<int64_t>(), expected.prompt_tokens);
    EXPECT_GT(expected.prompt_tokens, model.image_rows());  // the question's ids and the image rows

    // Streamed: the same text in SSE chunks.
    json streamed = image_request(file_bytes(image_path), question);
    streamed["stream"] = true;
    const Reply s = c.post("/v1/chat/completions", streamed);
    ASSERT_EQ(s.status, 200);
    const auto events = sse_events(s.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(sse_text(events), answer);
}

TEST_F(Media, BadImagesAreRejected) {
    Client c(server_->port());
    // 224 × 224 is over this server's limit of 100 × 100 pixels.
    const std::string big = file_bytes(std::string(AVIARY_FIXTURES_DIR) + "/vision/expected_scene_rgb_224.png");
    Reply r = c.post("/v1/chat/completions", image_request(big, "What is it?"));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"]["param"], "messages.content.image_url");
    r = c.post("/v1/chat/completions", image_request("this is not an image", "What is it?"));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"]["param"], "messages.content.image_url");
    json remote = image_request("x", "What?");
    remote["messages"][0]["content"][0]["image_url"]["url"] = "http://example.com/cat.png";
    r = c.post("/v1/chat/completions", remote);
    EXPECT_EQ(r.status, 400) << r.body;
    json two = image_request("x", "What?");
    two["messages"][0]["content"].push_back(two["messages"][0]["content"][0]);
    r = c.post("/v1/chat/completions", two);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(c.get("/health").status, 200);
}

TEST_F(Media, AudioTagsMatchTheTagger) {
    const auto dir = std::filesystem::temp_directory_path() / ("aviary_server_media_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string wav = wav_bytes(2.0);
    std::ofstream(dir / "tone.wav", std::ios::binary) << wav;
    auto model = audio::AudioRwkv::load(asset_model(kAudioModel + ".safetensors"));
    const auto expected = audio::tag_file(model, (dir / "tone.wav").string(), 5);

    Client c(server_->port());
    const Reply j = c.post("/v1/audio/tags", json{{"audio", server::base64_encode(wav)}, {"top_k", 5}});
    ASSERT_EQ(j.status, 200) << j.body;
    EXPECT_EQ(j.j["object"], "audio.tags");
    EXPECT_EQ(j.j["model"], kAudioModel);
    EXPECT_NEAR(j.j["duration_s"].get<double>(), 2.0, 1e-6);
    ASSERT_EQ(j.j["tags"].size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(j.j["tags"][i]["index"], expected[i].index);
        EXPECT_EQ(j.j["tags"][i]["name"], expected[i].name);
        EXPECT_NEAR(j.j["tags"][i]["score"].get<double>(), expected[i].score, 1e-12);
    }
    // The same sound as a multipart upload.
    httplib::MultipartFormDataItems form = {{"file", wav, "tone.wav", "audio/wav"}, {"top_k", "5", "", ""}};
    auto m = c.raw().Post("/v1/audio/tags", form);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200) << m->body;
    EXPECT_EQ(json::parse(m->body)["tags"], j.j["tags"]);
    std::filesystem::remove_all(dir);
}

TEST_F(Media, BadSoundsAreRejected) {
    Client c(server_->port());
    Reply r = c.post("/v1/audio/tags", json{{"audio", "%%%"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.j["error"]["param"], "audio");
    r = c.post("/v1/audio/tags", json{{"audio", server::base64_encode("RIFF not really a wave file")}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"]["param"], "audio");
    EXPECT_EQ(r.body.find("/tmp"), std::string::npos) << "a server path leaked: " << r.body;
    r = c.post("/v1/audio/tags", json{{"audio", server::base64_encode(wav_bytes(13.0))}});  // limit 12 s
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"]["param"], "audio");
    r = c.post("/v1/audio/tags", json{{"audio", server::base64_encode(wav_bytes(1.0))}, {"model", "nope"}});
    EXPECT_EQ(r.status, 404);
    r = c.post("/v1/audio/tags", json{{"top_k", 3}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(c.get("/health").status, 200);
}

}  // namespace
}  // namespace aviary::test
