// Config, corpus and framing for `aviary train music` (music_train.h). The framing follows ChatRWKV
// music/run.py (BOS 2, EOS 3, one byte per token) plus the shared data path's separator 0 after each tune, so a
// run from raw ABC sees exactly the token stream of `data build --tokenizer byte` on the framed JSONL.
#include "aviary/music/music_train.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

namespace aviary::music {
namespace {

std::string strip_framing(std::string text) {
    if (!text.empty() && text.front() == char(kBos)) text.erase(0, 1);
    if (!text.empty() && text.back() == char(kEos)) text.pop_back();
    return text;
}

template <class T>
void take(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if constexpr (std::is_floating_point_v<T>) {
        AVIARY_CHECK(v.is_number(), source, ": '", key, "' must be a number");
    } else {
        AVIARY_CHECK(v.is_number_integer(), source, ": '", key, "' must be an integer");
    }
    out = v.get<T>();
}

}  // namespace

MusicTrainConfig parse_music_train_config(const std::string& json_text, const std::string& source) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::exception& e) {
        AVIARY_FAIL(source, ": not valid JSON (", e.what(), ")");
    }
    AVIARY_CHECK(j.is_object(), source, ": expected a JSON object of training settings");
    static const char* kKeys[] = {"version",    "n_layer",        "n_embd",          "ctx_len",
                                  "batch",      "grad_accum",     "steps",           "lr",
                                  "lr_final",   "warmup",         "weight_decay",    "grad_clip",
                                  "seed",       "save_every",     "keep_last",       "validation_fraction",
                                  "split_seed", "max_tune_bytes", "eval_max_tokens", "comment"};
    for (const auto& [key, value] : j.items()) {
        bool known = false;
        for (const char* k : kKeys) known = known || key == k;
        AVIARY_CHECK(known, source, ": unknown key '", key,
                     "' (expected version, n_layer, n_embd, ctx_len, batch, grad_accum, steps, lr, lr_final, "
                     "warmup, weight_decay, grad_clip, seed, save_every, keep_last, validation_fraction, "
                     "split_seed, max_tune_bytes, eval_max_tokens, comment)");
    }
    MusicTrainConfig c;
    take(j, "version", c.version, source);
    take(j, "n_layer", c.n_layer, source);
    take(j, "n_embd", c.n_embd, source);
    take(j, "ctx_len", c.ctx_len, source);
    take(j, "batch", c.batch, source);
    take(j, "grad_accum", c.grad_accum, source);
    take(j, "steps", c.steps, source);
    take(j, "lr", c.lr, source);
    take(j, "lr_final", c.lr_final, source);
    take(j, "warmup", c.warmup, source);
    take(j, "weight_decay", c.weight_decay, source);
    take(j, "grad_clip", c.grad_clip, source);
    take(j, "seed", c.seed, source);
    take(j, "save_every", c.save_every, source);
    take(j, "keep_last", c.keep_last, source);
    take(j, "validation_fraction", c.validation_fraction, source);
    take(j, "split_seed", c.split_seed, source);
    take(j, "max_tune_bytes", c.max_tune_bytes, source);
    take(j, "eval_max_tokens", c.eval_max_tokens, source);
    AVIARY_CHECK(c.version == 5 || c.version == 6, source, ": 'version' must be 5 (Eagle) or 6 (Finch), got ",
                 c.version);
    AVIARY_CHECK(c.n_layer >= 2 && c.n_layer <= 256, source,
                 ": 'n_layer' must be in 2..256 (the official init divides by n_layer - 1), got ", c.n_layer);
    AVIARY_CHECK(c.n_embd >= 64 && c.n_embd % 64 == 0, source,
                 ": 'n_embd' must be a positive multiple of the head size 64, got ", c.n_embd);
    AVIARY_CHECK(c.ctx_len >= 2, source, ": 'ctx_len' must be >= 2, got ", c.ctx_len);
    AVIARY_CHECK(c.batch >= 1 && c.grad_accum >= 1 && c.steps >= 1, source,
                 ": 'batch', 'grad_accum' and 'steps' must be >= 1");
    AVIARY_CHECK(c.lr > 0 && c.lr_final >= 0 && c.warmup >= 0 && c.weight_decay >= 0 && c.grad_clip >= 0, source,
                 ": 'lr' must be > 0 and 'lr_final', 'warmup', 'weight_decay', 'grad_clip' >= 0");
    AVIARY_CHECK(c.save_every >= 0 && c.keep_last >= 1, source, ": 'save_every' >= 0 and 'keep_last' >= 1 expected");
    AVIARY_CHECK(c.validation_fraction >= 0 && c.validation_fraction < 1, source,
                 ": 'validation_fraction' must be in [0, 1), got ", c.validation_fraction);
    AVIARY_CHECK(c.max_tune_bytes >= 16 && c.eval_max_tokens >= 1, source,
                 ": 'max_tune_bytes' >= 16 and 'eval_max_tokens' >= 1 expected");
    return c;
}

MusicTrainConfig read_music_train_config(const std::string& path) {
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read config '", path,
                 "': expected a JSON file of training settings");
    return parse_music_train_config(text, "config '" + path + "'");
}

std::string music_train_config_json(const MusicTrainConfig& c) {
    nlohmann::json j = {{"version", c.version},
                        {"n_layer", c.n_layer},
                        {"n_embd", c.n_embd},
                        {"ctx_len", c.ctx_len},
                        {"batch", c.batch},
                        {"grad_accum", c.grad_accum},
                        {"steps", c.steps},
                        {"lr", c.lr},
                        {"lr_final", c.lr_final},
                        {"warmup", c.warmup},
                        {"weight_decay", c.weight_decay},
                        {"grad_clip", c.grad_clip},
                        {"seed", c.seed},
                        {"save_every", c.save_every},
                        {"keep_last", c.keep_last},
                        {"validation_fraction", c.validation_fraction},
                        {"split_seed", c.split_seed},
                        {"max_tune_bytes", c.max_tune_bytes},
                        {"eval_max_tokens", c.eval_max_tokens}};
    return j.dump(2) + "\n";
}

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// {"text": "\x02…\x03"} per line, as tools/make_music_corpus.py writes; blank lines are skipped.
std::vector<Tune> parse_music_jsonl(std::string_view text, const std::string& source) {
    std::vector<Tune> out;
    size_t n = 0;
    for (size_t pos = 0; pos < text.size();) {  // the lines std::getline gives
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        try {
            out.push_back({strip_framing(nlohmann::json::parse(line).at("text").get<std::string>()),
                           source + ":" + std::to_string(n)});
        } catch (const nlohmann::json::exception&) {
            AVIARY_FAIL("'", source, "' line ", n, ": expected {\"text\": …}");
        }
    }
    return out;
}

std::vector<Tune> with_tunes(std::vector<Tune> tunes, const std::string& source) {
    AVIARY_CHECK(!tunes.empty(), "'", source, "' holds no tunes");
    return tunes;
}

}  // namespace

std::vector<Tune> parse_music_corpus(std::string_view text, const std::string& source) {
    if (ends_with(source, ".jsonl")) return with_tunes(parse_music_jsonl(text, source), source);
    if (ends_with(source, ".json")) return with_tunes(parse_irishman_json(text, source), source);
    return with_tunes(split_abc_collection(text, source), source);
}

std::vector<Tune> read_music_corpus(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    AVIARY_CHECK(fs::exists(path, ec), "music data '", path,
                 "' does not exist (expected a .abc file or directory, IrishMAN .json, or .jsonl)");
    if (!ends_with(path, ".json") && !ends_with(path, ".jsonl") && fs::is_directory(path, ec))
        return with_tunes(read_abc_path(path), path);  // every .abc file under it
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read music data '", path, "'");
    return parse_music_corpus(text, path);
}

std::vector<int32_t> frame_tunes_as_tokens(const std::vector<Tune>& tunes) {
    std::vector<int32_t> ids;
    for (const auto& t : tunes) {
        ids.push_back(kBos);
        for (unsigned char ch : t.abc) {
            AVIARY_CHECK(ch < 128 && ch > kEos, "tune ", t.source, ": non-ASCII or control byte ", int(ch),
                         " (the byte models take 7-bit ABC text)");
            ids.push_back(ch);
        }
        ids.push_back(kEos);
        ids.push_back(0);
    }
    return ids;
}

}  // namespace aviary::music
