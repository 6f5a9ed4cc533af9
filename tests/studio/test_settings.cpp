// Settings persistence (apps/studio/settings.cpp): a round trip keeps every value, missing keys keep the
// ChatRWKV defaults, bad files are errors naming the file, writes are atomic and create the directory, and
// training configs load on their own.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "aviary/core/error.h"
#include "chat_history.h"
#include "common/cli_run.h"
#include "settings.h"

using namespace aviary::studio;
namespace fs = std::filesystem;

TEST(StudioSettings, DefaultsAreThePipelineArgs) {
    const Settings s = settings_from_json("{}");
    EXPECT_FLOAT_EQ(s.chat.sampler.temperature, 1.0f);
    EXPECT_FLOAT_EQ(s.chat.sampler.top_p, 0.85f);
    EXPECT_EQ(s.chat.sampler.top_k, 0);
    EXPECT_FLOAT_EQ(s.chat.sampler.presence_penalty, 0.2f);
    EXPECT_FLOAT_EQ(s.chat.sampler.frequency_penalty, 0.2f);
    EXPECT_FLOAT_EQ(s.chat.sampler.penalty_decay, 0.996f);
    EXPECT_FLOAT_EQ(s.music.temperature, 1.0f);  // music/run.py ABC preset
    EXPECT_EQ(s.music.top_k, 8);
    EXPECT_FLOAT_EQ(s.music.top_p, 0.8f);
    EXPECT_EQ(s.chat.tokenizer, "byte");
}

TEST(StudioSettings, RoundTripThroughAFile) {
    const fs::path dir = aviary::test::scratch_dir("studio_settings");
    const std::string path = (dir / "cfg" / "aviary" / "studio.json").string();
    Settings s;
    s.chat.model = "/models/RWKV-x060-World-1B6.pth";
    s.chat.tokenizer = "world";
    s.chat.chat_format = true;
    s.chat.sampler.temperature = 0.7f;
    s.chat.sampler.top_p = 0.3f;
    s.chat.sampler.top_k = 12;
    s.chat.sampler.seed = 1234;
    s.chat.max_tokens = 77;
    s.music.meter = "3/4", s.music.key = "Ador", s.music.seed = 9, s.music.max_bytes = 300;
    s.train.steps = 321, s.train.lr = 3.5e-4, s.train.data = "/d/x.jsonl";
    s.threads = 3;
    s.last_image = "/img/a.png";
    save_settings(path, s);  // creates cfg/aviary/
    ASSERT_TRUE(fs::exists(path));
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
        EXPECT_EQ(e.path().filename(), "studio.json") << "temporary left behind: " << e.path();
    const Settings r = load_settings(path);
    EXPECT_EQ(r.chat.model, s.chat.model);
    EXPECT_EQ(r.chat.tokenizer, "world");
    EXPECT_TRUE(r.chat.chat_format);
    EXPECT_FLOAT_EQ(r.chat.sampler.temperature, 0.7f);
    EXPECT_FLOAT_EQ(r.chat.sampler.top_p, 0.3f);
    EXPECT_EQ(r.chat.sampler.top_k, 12);
    EXPECT_EQ(r.chat.sampler.seed, 1234u);
    EXPECT_EQ(r.chat.max_tokens, 77);
    EXPECT_EQ(r.music.meter, "3/4");
    EXPECT_EQ(r.music.key, "Ador");
    EXPECT_EQ(r.music.seed, 9u);
    EXPECT_EQ(r.music.max_bytes, 300);
    EXPECT_EQ(r.train.steps, 321);
    EXPECT_DOUBLE_EQ(r.train.lr, 3.5e-4);
    EXPECT_EQ(r.train.data, "/d/x.jsonl");
    EXPECT_EQ(r.threads, 3);
    EXPECT_EQ(r.last_image, "/img/a.png");
    // A missing file gives the defaults.
    EXPECT_EQ(load_settings((dir / "none.json").string()).chat.max_tokens, 200);
}

TEST(StudioSettings, BadFilesAreErrorsNamingThem) {
    const fs::path dir = aviary::test::scratch_dir("studio_settings_bad");
    const std::string path = (dir / "studio.json").string();
    std::ofstream(path) << "{ \"chat\": ";
    try {
        load_settings(path);
        FAIL() << "no error";
    } catch (const aviary::Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_THROW(settings_from_json(R"({"chat": {"temperature": "hot"}})"), aviary::Error);
    EXPECT_THROW(settings_from_json(R"({"chat": {"tokenizer": "bpe"}})"), aviary::Error);
    EXPECT_THROW(settings_from_json("[1]"), aviary::Error);
}

TEST(StudioSettings, DefaultPathFollowsXdg) {
    const char* old = std::getenv("XDG_CONFIG_HOME");
    const std::string saved = old ? old : "";
    setenv("XDG_CONFIG_HOME", "/tmp/xdg-test", 1);
    EXPECT_EQ(default_settings_path(), "/tmp/xdg-test/aviary/studio.json");
    if (old)
        setenv("XDG_CONFIG_HOME", saved.c_str(), 1);
    else
        unsetenv("XDG_CONFIG_HOME");
}

TEST(StudioSettings, TrainConfigFiles) {
    TrainSettings t;
    t.model = "init:2,64,6", t.steps = 12, t.lr = 1e-3, t.tokenizer = "world";
    const TrainSettings r = train_config_from_json(train_config_to_json(t), "cfg");
    EXPECT_EQ(r.model, "init:2,64,6");
    EXPECT_EQ(r.steps, 12);
    EXPECT_DOUBLE_EQ(r.lr, 1e-3);
    EXPECT_EQ(r.tokenizer, "world");
    EXPECT_THROW(train_config_from_json(R"({"steps": 0})", "cfg"), aviary::Error);
    EXPECT_THROW(train_config_from_json(R"({"tokenizer": "x"})", "cfg"), aviary::Error);
}

TEST(StudioSettings, ChatHistoryJson) {
    const std::vector<ChatMessage> h = {{"user", "Hi \"there\"\n"}, {"model", "X:1\nK:D\n|:abc:|"}};
    const auto r = history_from_json(history_to_json(h));
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].role, "user");
    EXPECT_EQ(r[0].text, h[0].text);
    EXPECT_EQ(r[1].text, h[1].text);
    EXPECT_THROW(history_from_json("{}"), aviary::Error);
    EXPECT_THROW(history_from_json(R"([{"role": 1}])"), aviary::Error);
    // A stopped answer may end inside a UTF-8 character: it is replaced, not an exception.
    EXPECT_NO_THROW(history_to_json({{"model", std::string("caf\xC3", 4)}}));
}
