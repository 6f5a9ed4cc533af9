// LLaVA-format data (llava_data.h): the JSON list or JSONL of conversation items (spec A.8), checked item by item.
#include "aviary/vision/llava_data.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

namespace aviary::vision {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<LlavaSample> read_llava(const std::string& path) {
    return parse_llava(read_text_file(path, "LLaVA data"), path);
}

std::string read_text_file(const std::string& path, const char* what) {
    std::error_code ec;
    AVIARY_CHECK(fs::exists(path, ec) && !fs::is_directory(path, ec), what, " '", path, "' does not exist");
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), what, " '", path, "' cannot be opened for reading");
    return text;
}

std::vector<LlavaSample> parse_llava(const std::string& text, const std::string& path) {
    std::vector<json> items;
    const auto first = text.find_first_not_of(" \t\r\n");
    AVIARY_CHECK(first != std::string::npos, "LLaVA data '", path, "' is empty");
    try {
        if (text[first] == '[') {
            for (auto& j : json::parse(text)) items.push_back(j);
        } else {
            std::istringstream lines(text);
            for (std::string line; std::getline(lines, line);)
                if (line.find_first_not_of(" \t\r") != std::string::npos) items.push_back(json::parse(line));
        }
    } catch (const json::exception& e) {
        AVIARY_FAIL("LLaVA data '", path, "' is not valid JSON/JSONL: ", e.what());
    }
    std::vector<LlavaSample> out;
    for (size_t i = 0; i < items.size(); ++i) {
        const auto& j = items[i];
        try {
            LlavaSample s;
            if (j.contains("id")) s.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
            if (j.contains("image") && !j["image"].is_null()) s.image = j["image"].get<std::string>();
            for (const auto& t : j.at("conversations"))
                s.turns.push_back({t.at("from").get<std::string>(), t.at("value").get<std::string>()});
            AVIARY_CHECK(!s.turns.empty(), "no turns");
            out.push_back(std::move(s));
        } catch (const json::exception& e) {
            AVIARY_FAIL("LLaVA data '", path, "' item ", i,
                        ": expected {\"image\": …, \"conversations\": [{\"from\", "
                        "\"value\"}, …]} (",
                        e.what(), ")");
        }
    }
    AVIARY_CHECK(!out.empty(), "LLaVA data '", path, "' holds no items");
    return out;
}

std::string llava_image_path(const std::string& image_folder, const std::string& image) {
    return image_folder.empty() ? image : (fs::path(image_folder) / image).string();
}

}  // namespace aviary::vision
