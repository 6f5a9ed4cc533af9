// VQA scoring: exact-match accuracy of short answers and POPE yes/no F1 (spec A.11; POPE's eval: first sentence
// containing "No"/"no"/"not" -> no, else yes; F1 of the "yes" class).
#include "aviary/vision/vqa_eval.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/vision/llava_data.h"

namespace aviary::vision {

using json = nlohmann::json;

std::vector<VqaItem> read_vqa(const std::string& path) {
    return parse_vqa(read_text_file(path, "question file"), path);
}

std::vector<VqaItem> parse_vqa(const std::string& text, const std::string& path) {
    std::istringstream f(text);
    std::string first_line;
    std::getline(f, first_line);
    const bool llava = first_line.find("\"conversations\"") != std::string::npos ||
                       first_line.find_first_not_of(" \t\r") == first_line.find('[');
    std::vector<VqaItem> out;
    if (llava) {
        for (const auto& s : parse_llava(text, path)) {
            VqaItem it;
            it.id = s.id;
            it.image = s.image;
            for (const auto& t : s.turns) {
                if (t.from == "human" && it.question.empty()) {
                    std::string q = t.value;
                    for (size_t p; (p = q.find("<image>")) != std::string::npos;) q.erase(p, 7);
                    it.question = clean_value(q);
                } else if (t.from == "gpt" && it.answer.empty()) {
                    it.answer = clean_value(t.value);
                }
            }
            AVIARY_CHECK(!it.question.empty(), "question file '", path, "' item '", s.id, "' has no question");
            out.push_back(it);
        }
        return out;
    }
    f.clear();
    f.seekg(0);
    std::string line;
    for (int64_t n = 1; std::getline(f, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            const auto j = json::parse(line);
            VqaItem it;
            it.image = j.at("image").get<std::string>();
            it.question = j.contains("question") ? j["question"].get<std::string>() : j.at("text").get<std::string>();
            it.answer = j.contains("answer") ? j["answer"].get<std::string>()
                                             : (j.contains("label") ? j["label"].get<std::string>() : "");
            const char* idk = j.contains("question_id") ? "question_id" : "id";
            if (j.contains(idk)) it.id = j[idk].is_string() ? j[idk].get<std::string>() : j[idk].dump();
            out.push_back(it);
        } catch (const json::exception& e) {
            AVIARY_FAIL("question file '", path, "' line ", n, ": expected {\"image\", \"question\", \"answer\"} (",
                        e.what(), ")");
        }
    }
    AVIARY_CHECK(!out.empty(), "question file '", path, "' holds no questions");
    return out;
}

std::string normalize_answer(const std::string& answer) {
    std::string s;
    for (char c : answer) s += char(std::tolower(static_cast<unsigned char>(c)));
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    s = s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
    while (!s.empty() && (s.back() == '.' || s.back() == '!')) s.pop_back();
    std::string out;  // collapse inner whitespace
    for (char c : s)
        if (!(std::isspace(static_cast<unsigned char>(c)) && !out.empty() && out.back() == ' '))
            out += std::isspace(static_cast<unsigned char>(c)) ? ' ' : c;
    return out;
}

std::string pope_yes_no(const std::string& answer) {
    const std::string first = answer.substr(0, answer.find('.'));
    std::istringstream words(first);
    for (std::string w; words >> w;) {
        while (!w.empty() && std::ispunct(static_cast<unsigned char>(w.back()))) w.pop_back();
        if (w == "No" || w == "no" || w == "not") return "no";
    }
    return "yes";
}

VqaScore score_vqa(const std::vector<std::string>& predictions, const std::vector<std::string>& references) {
    AVIARY_CHECK(predictions.size() == references.size(), predictions.size(), " predictions for ", references.size(),
                 " references");
    VqaScore s;
    s.total = int64_t(references.size());
    s.yes_no = s.total > 0;
    for (size_t i = 0; i < references.size(); ++i) {
        if (normalize_answer(predictions[i]) == normalize_answer(references[i])) ++s.correct;
        const std::string r = normalize_answer(references[i]);
        s.yes_no = s.yes_no && (r == "yes" || r == "no");
    }
    s.accuracy = s.total ? double(s.correct) / double(s.total) : 0.0;
    if (s.yes_no) {
        int64_t tp = 0, fp = 0, fn = 0, yes = 0;
        for (size_t i = 0; i < references.size(); ++i) {
            const bool p = pope_yes_no(predictions[i]) == "yes", r = normalize_answer(references[i]) == "yes";
            yes += p;
            tp += p && r;
            fp += p && !r;
            fn += !p && r;
        }
        s.precision = tp + fp ? double(tp) / double(tp + fp) : 0.0;
        s.recall = tp + fn ? double(tp) / double(tp + fn) : 0.0;
        s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
        s.yes_ratio = double(yes) / double(s.total);
    }
    return s;
}

}  // namespace aviary::vision
