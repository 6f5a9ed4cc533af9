// Scoring of visual question answering (spec A.11): short answers by exact match after normalisation (lower case,
// trimmed, trailing period dropped), and POPE-style yes/no questions by F1 with "yes" as the positive class (an
// answer counts as "no" when its first sentence contains "No", "no" or "not", as the official POPE evaluation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace aviary::vision {

struct VqaItem {
    std::string id, image, question, answer;
};
// JSONL ({"image", "question" | "text", "answer" | "label", "question_id" | "id"}) or a LLaVA JSON/JSONL list (first
// human turn without "<image>" = question, first gpt turn = answer).
std::vector<VqaItem> read_vqa(const std::string& path);
// The same for the file's text already in memory (read_vqa reads the file and calls this); errors name `path`.
std::vector<VqaItem> parse_vqa(const std::string& text, const std::string& path);

std::string normalize_answer(const std::string& answer);
std::string pope_yes_no(const std::string& answer);  // "yes" or "no"

struct VqaScore {
    int64_t total = 0, correct = 0;
    double accuracy = 0;  // exact match of normalised answers
    bool yes_no = false;  // every reference is yes/no: the POPE numbers below are filled
    double precision = 0, recall = 0, f1 = 0, yes_ratio = 0;
};
VqaScore score_vqa(const std::vector<std::string>& predictions, const std::vector<std::string>& references);

}  // namespace aviary::vision
