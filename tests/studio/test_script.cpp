// Script parsing for the scripted mode (apps/studio/script.cpp): commands, arguments, comments, and errors
// that name the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "aviary/core/error.h"
#include "script.h"

using namespace aviary::studio;

TEST(StudioScript, ParsesCommands) {
    const auto cmds = parse_script(
        "# drive the chat panel\n"
        "panel chat\n"
        "\n"
        "type chat.input X:1\\nT:Test  tune\n"
        "set chat.max_tokens 40\n"
        "set chat.chat_format false\n"
        "click Generate\n"
        "  wait-idle 30  \n"
        "open /tmp/a file.png\n"
        "screenshot chat.png\n"
        "expect-no-error\n"
        "quit\n");
    ASSERT_EQ(cmds.size(), 10u);
    EXPECT_EQ(cmds[0].verb, "panel");
    EXPECT_EQ(cmds[0].args[0], "chat");
    EXPECT_EQ(cmds[0].line, 2);
    EXPECT_EQ(cmds[1].verb, "type");
    EXPECT_EQ(cmds[1].args[0], "chat.input");
    EXPECT_EQ(cmds[1].rest, "X:1\nT:Test  tune");  // rest of the line after the field, \n unescaped
    EXPECT_EQ(cmds[2].args[1], "40");
    EXPECT_EQ(cmds[4].rest, "Generate");
    EXPECT_EQ(cmds[5].verb, "wait-idle");
    EXPECT_EQ(cmds[5].line, 8);
    EXPECT_EQ(cmds[6].rest, "/tmp/a file.png");
    EXPECT_EQ(cmds[7].args[0], "chat.png");
    EXPECT_EQ(cmds[9].verb, "quit");
}

TEST(StudioScript, ExpectErrorKeepsTheWholeText) {
    const auto cmds = parse_script(
        "expect-error  not a model: 'x y.pth'  \nexpect-no-error\nexpect-output music.abc\n"
        "expect-output audio.tags  Sine wave\n");
    ASSERT_EQ(cmds.size(), 4u);
    EXPECT_EQ(cmds[0].verb, "expect-error");
    EXPECT_EQ(cmds[0].rest, "not a model: 'x y.pth'");  // matched as one substring of the banner, spaces kept
    EXPECT_EQ(cmds[1].verb, "expect-no-error");
    EXPECT_EQ(cmds[2].args[0], "music.abc");
    EXPECT_EQ(cmds[2].rest, "");  // any non-empty output
    EXPECT_EQ(cmds[3].args[0], "audio.tags");
    EXPECT_EQ(cmds[3].rest, "Sine wave");
}

TEST(StudioScript, ErrorsNameTheLine) {
    auto error_of = [](const std::string& text) -> std::string {
        try {
            parse_script(text);
        } catch (const aviary::Error& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(error_of("panel chat\nfly away\n").find("script line 2: unknown command 'fly'"), std::string::npos);
    EXPECT_NE(error_of("panel kitchen\n").find("unknown panel 'kitchen'"), std::string::npos);
    EXPECT_NE(error_of("\n\nwait-idle soon\n").find("script line 3"), std::string::npos);
    EXPECT_NE(error_of("wait-idle -1\n").find("non-negative"), std::string::npos);
    EXPECT_NE(error_of("set chat.seed\n").find("needs"), std::string::npos);
    EXPECT_NE(error_of("set chat.seed many\n").find("expects a number"), std::string::npos);
    EXPECT_NE(error_of("screenshot ../x.png\n").find("inside the screenshot directory"), std::string::npos);
    EXPECT_NE(error_of("screenshot shot.jpg\n").find(".png"), std::string::npos);
    EXPECT_NE(error_of("click\n").find("button label"), std::string::npos);
    EXPECT_NE(error_of("expect-error\n").find("the text the error banner should contain"), std::string::npos);
    EXPECT_NE(error_of("expect-output\n").find("an output name"), std::string::npos);
    EXPECT_EQ(error_of("# only a comment\n"), "");
}

// The docs' screenshot script (tools/make_studio_screenshots.sh runs it) parses, screenshots every panel and opens
// only files that exist in the repository.
TEST(StudioScript, DocsScreenshotScriptParses) {
    const auto cmds = load_script(std::string(AVIARY_SOURCE_DIR) + "/tests/studio/docs_screenshots.txt");
    std::set<std::string> shots;
    for (const auto& c : cmds) {
        if (c.verb == "screenshot") shots.insert(c.rest);
        if (c.verb == "open") {
            EXPECT_TRUE(std::filesystem::exists(std::string(AVIARY_SOURCE_DIR) + "/" + c.rest)) << c.rest;
        }
    }
    for (const char* panel : {"chat", "image", "image-vqa", "audio", "music", "training", "log", "settings"})
        EXPECT_EQ(shots.count(std::string(panel) + ".png"), 1u) << panel;
    ASSERT_FALSE(cmds.empty());
    EXPECT_EQ(cmds.back().verb, "quit");
}
