// Tests of the LLaVA and VQA data readers (vision/src/llava_data.cpp, vqa_eval.cpp): parse_llava / parse_vqa, the
// parsers the file readers call with the file's text (and the fuzzer calls on its input), give the same items, or
// the same error naming the same file, item and line, as read_llava / read_vqa on a file holding that text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aviary/core/error.h"
#include "aviary/vision/llava_data.h"
#include "aviary/vision/vqa_eval.h"
#include "common/error_of.h"

namespace av = aviary::vision;
namespace fs = std::filesystem;
using aviary::test::error_of;

namespace {

std::string flatten(const std::vector<av::LlavaSample>& samples) {
    std::string out;
    for (const auto& s : samples) {
        out += "[" + s.id + "|" + s.image;
        for (const auto& t : s.turns) out += "|" + t.from + ":" + t.value;
        out += "]";
    }
    return out;
}

std::string flatten(const std::vector<av::VqaItem>& items) {
    std::string out;
    for (const auto& it : items) out += "[" + it.id + "|" + it.image + "|" + it.question + "|" + it.answer + "]";
    return out;
}

const char* const kTexts[] = {
    // a LLaVA list, two items (one text-only, a numeric id)
    R"([{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "<image>\nColour?"},
                                                       {"from": "gpt", "value": "Red."}]},
        {"id": 7, "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}])",
    // LLaVA JSONL with a blank line and no final newline
    "{\"id\": \"j\", \"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, {\"from\": \"gpt\", \"value\": "
    "\"A\"}]}\n\n{\"id\": \"k\", \"image\": null, \"conversations\": [{\"from\": \"human\", \"value\": \"Q2\"}]}",
    // VQA JSONL (question/answer, text/label forms)
    "{\"image\": \"a.png\", \"question\": \"Is it red?\", \"answer\": \"yes\", \"question_id\": 3}\n"
    "{\"image\": \"b.png\", \"text\": \"What?\", \"label\": \"no\", \"id\": \"q4\"}\n",
    // errors: bad JSON, an item without conversations, a wrong type, nothing, no question
    "[{\"id\": \"a\", \"conversations\": [",
    R"([{"id": "a", "image": "x.png"}])",
    R"([{"id": "a", "image": 3, "conversations": [{"from": "human", "value": "Q"}]}])",
    "[]",
    " \n\t\n",
    "",
    "{\"image\": \"a.png\", \"answer\": \"yes\"}\n",
    R"([{"id": "g", "conversations": [{"from": "gpt", "value": "only an answer"}]}])",
};

}  // namespace

TEST(LlavaData, ParseOfTheTextIsReadOfTheFile) {
    const fs::path dir = fs::temp_directory_path() / ("aviary_llava_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    size_t llava_refused = 0, vqa_refused = 0;
    for (size_t i = 0; i < std::size(kTexts); ++i) {
        SCOPED_TRACE(kTexts[i]);
        const std::string path = (dir / ("data" + std::to_string(i) + ".json")).string();
        std::ofstream(path, std::ios::binary) << kTexts[i];
        std::string read, parsed;
        const std::string read_error = error_of([&] { read = flatten(av::read_llava(path)); });
        const std::string parse_error = error_of([&] { parsed = flatten(av::parse_llava(kTexts[i], path)); });
        EXPECT_EQ(parse_error, read_error);
        EXPECT_EQ(parsed, read);
        llava_refused += read_error != "(no error)";
        if (read_error != "(no error)") {
            EXPECT_NE(read_error.find(path), std::string::npos) << read_error;
        }
        const std::string vqa_read_error = error_of([&] { read = flatten(av::read_vqa(path)); });
        const std::string vqa_parse_error = error_of([&] { parsed = flatten(av::parse_vqa(kTexts[i], path)); });
        EXPECT_EQ(vqa_parse_error, vqa_read_error);
        EXPECT_EQ(parsed, read);
        vqa_refused += vqa_read_error != "(no error)";
    }
    EXPECT_EQ(llava_refused, 8u);  // all but the list, the LLaVA JSONL and the answer-only item
    EXPECT_EQ(vqa_refused, 8u);    // all but the list, the LLaVA JSONL and the VQA JSONL
    EXPECT_EQ(flatten(av::parse_llava(kTexts[0], "x")),
              "[a|x.png|human:<image>\nColour?|gpt:Red.][7||human:Hi|gpt:Hello]");
    EXPECT_EQ(flatten(av::parse_vqa(kTexts[2], "x")), "[3|a.png|Is it red?|yes][q4|b.png|What?|no]");
    // Missing files and directories: errors naming them (the file readers' own checks).
    const std::string missing = (dir / "missing.json").string();
    EXPECT_NE(error_of([&] { av::read_llava(missing); }).find(missing + "' does not exist"), std::string::npos);
    EXPECT_NE(error_of([&] { av::read_vqa(missing); }).find(missing + "' does not exist"), std::string::npos);
    EXPECT_NE(error_of([&] { av::read_vqa(dir.string()); }).find("does not exist"), std::string::npos);
    fs::remove_all(dir);
}
