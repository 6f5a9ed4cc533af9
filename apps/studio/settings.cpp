// Settings persistence (settings.h) with nlohmann-json.
#include "settings.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

namespace aviary::studio {

namespace fs = std::filesystem;
using nlohmann::json;

std::string default_settings_path() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    fs::path base;
    if (xdg && *xdg)
        base = xdg;
    else if (const char* home = std::getenv("HOME"); home && *home)
        base = fs::path(home) / ".config";
    else
        base = fs::temp_directory_path();
    return (base / "aviary" / "studio.json").string();
}

std::string settings_to_json(const Settings& s) {
    json j;
    const SamplerOptions& so = s.chat.sampler;
    j["chat"] = {{"model", s.chat.model},
                 {"tokenizer", s.chat.tokenizer},
                 {"vocab", s.chat.vocab},
                 {"chat_format", s.chat.chat_format},
                 {"temperature", so.temperature},
                 {"top_p", so.top_p},
                 {"top_k", so.top_k},
                 {"alpha_presence", so.presence_penalty},
                 {"alpha_frequency", so.frequency_penalty},
                 {"alpha_decay", so.penalty_decay},
                 {"seed", so.seed},
                 {"max_tokens", s.chat.max_tokens}};
    const MusicSettings& m = s.music;
    j["music"] = {{"model", m.model},
                  {"meter", m.meter},
                  {"key", m.key},
                  {"length", m.length},
                  {"control_codes", m.control_codes},
                  {"temperature", m.temperature},
                  {"top_p", m.top_p},
                  {"top_k", m.top_k},
                  {"max_bytes", m.max_bytes},
                  {"seed", m.seed}};
    j["vision"] = {{"model", s.vision.model},
                   {"clip", s.vision.clip},
                   {"proj", s.vision.proj},
                   {"max_tokens", s.vision.max_tokens}};
    const TrainSettings& t = s.train;
    j["train"] = {
        {"model", t.model},           {"data", t.data},       {"out", t.out},           {"tokenizer", t.tokenizer},
        {"steps", t.steps},           {"ctx_len", t.ctx_len}, {"batch", t.batch},       {"warmup", t.warmup},
        {"save_every", t.save_every}, {"lr", t.lr},           {"lr_final", t.lr_final}, {"threads", t.threads}};
    j["aviary_path"] = s.aviary_path;
    j["threads"] = s.threads;
    j["last_image"] = s.last_image;
    j["last_audio"] = s.last_audio;
    j["audio_model"] = s.audio_model;
    return j.dump(2) + "\n";
}

namespace {
// Whether a JSON number fits T: nlohmann converts with a plain cast, which is undefined for a floating value outside
// T's range (UBSan, found by fuzzing: tests/fuzz/regressions/studio_settings/) and wraps an integer silently.
template <class T>
bool number_fits(const json& v) {
    if constexpr (std::is_integral_v<T>) {
        constexpr auto max = std::numeric_limits<T>::max();
        if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(max);
        if (v.is_number_integer()) {
            const int64_t i = v.get<int64_t>();
            if constexpr (std::is_signed_v<T>)
                return i >= int64_t(std::numeric_limits<T>::lowest()) && i <= int64_t(max);
            else
                return i >= 0 && uint64_t(i) <= uint64_t(max);
        }
        const double d = v.get<double>(), limit = std::ldexp(1.0, std::numeric_limits<T>::digits);  // 2^digits
        return std::isfinite(d) && d < limit && d >= (std::is_signed_v<T> ? -limit : 0.0);
    } else {
        const double d = v.get<double>();
        return std::isfinite(d) && std::fabs(d) <= double(std::numeric_limits<T>::max());
    }
}

template <class T>
void get(const json& j, const char* key, T& out, const std::string& source) {
    if (!j.contains(key) || j[key].is_null()) return;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
        AVIARY_CHECK(!j[key].is_number() || number_fits<T>(j[key]), source, ": \"", key, "\" is out of range (",
                     j[key].dump(), ")");
    try {
        out = j[key].get<T>();
    } catch (const std::exception&) {
        AVIARY_FAIL(source, ": \"", key, "\" has the wrong type (", j[key].dump(), ")");
    }
}
void read_train(const json& t, TrainSettings& out, const std::string& source) {
    get(t, "model", out.model, source);
    get(t, "data", out.data, source);
    get(t, "out", out.out, source);
    get(t, "tokenizer", out.tokenizer, source);
    get(t, "steps", out.steps, source);
    get(t, "ctx_len", out.ctx_len, source);
    get(t, "batch", out.batch, source);
    get(t, "warmup", out.warmup, source);
    get(t, "save_every", out.save_every, source);
    get(t, "lr", out.lr, source);
    get(t, "lr_final", out.lr_final, source);
    get(t, "threads", out.threads, source);
    AVIARY_CHECK(out.steps > 0 && out.ctx_len > 0 && out.batch > 0 && out.lr > 0, source,
                 ": train steps, ctx_len, batch and lr must be positive");
    AVIARY_CHECK(out.tokenizer == "byte" || out.tokenizer == "world", source,
                 ": train tokenizer must be \"byte\" or \"world\", got \"", out.tokenizer, "\"");
}
}  // namespace

std::string train_config_to_json(const TrainSettings& t) {
    Settings s;
    s.train = t;
    return json::parse(settings_to_json(s))["train"].dump(2) + "\n";
}

TrainSettings train_config_from_json(const std::string& text, const std::string& source) {
    json j;
    try {
        j = json::parse(text);
    } catch (const std::exception& e) {
        AVIARY_FAIL(source, ": not valid JSON (", e.what(), ")");
    }
    AVIARY_CHECK(j.is_object(), source, ": expected a JSON object");
    TrainSettings t;
    read_train(j, t, source);
    return t;
}

Settings settings_from_json(const std::string& text, const std::string& source) {
    json j;
    try {
        j = json::parse(text);
    } catch (const std::exception& e) {
        AVIARY_FAIL(source, ": not valid JSON (", e.what(), ")");
    }
    AVIARY_CHECK(j.is_object(), source, ": expected a JSON object");
    Settings s;
    if (j.contains("chat") && j["chat"].is_object()) {
        const json& c = j["chat"];
        SamplerOptions& so = s.chat.sampler;
        get(c, "model", s.chat.model, source);
        get(c, "tokenizer", s.chat.tokenizer, source);
        get(c, "vocab", s.chat.vocab, source);
        get(c, "chat_format", s.chat.chat_format, source);
        get(c, "temperature", so.temperature, source);
        get(c, "top_p", so.top_p, source);
        get(c, "top_k", so.top_k, source);
        get(c, "alpha_presence", so.presence_penalty, source);
        get(c, "alpha_frequency", so.frequency_penalty, source);
        get(c, "alpha_decay", so.penalty_decay, source);
        get(c, "seed", so.seed, source);
        get(c, "max_tokens", s.chat.max_tokens, source);
        AVIARY_CHECK(s.chat.tokenizer == "byte" || s.chat.tokenizer == "world", source,
                     ": chat.tokenizer must be \"byte\" or \"world\", got \"", s.chat.tokenizer, "\"");
    }
    if (j.contains("music") && j["music"].is_object()) {
        const json& m = j["music"];
        get(m, "model", s.music.model, source);
        get(m, "meter", s.music.meter, source);
        get(m, "key", s.music.key, source);
        get(m, "length", s.music.length, source);
        get(m, "control_codes", s.music.control_codes, source);
        get(m, "temperature", s.music.temperature, source);
        get(m, "top_p", s.music.top_p, source);
        get(m, "top_k", s.music.top_k, source);
        get(m, "max_bytes", s.music.max_bytes, source);
        get(m, "seed", s.music.seed, source);
    }
    if (j.contains("vision") && j["vision"].is_object()) {
        const json& v = j["vision"];
        get(v, "model", s.vision.model, source);
        get(v, "clip", s.vision.clip, source);
        get(v, "proj", s.vision.proj, source);
        get(v, "max_tokens", s.vision.max_tokens, source);
    }
    if (j.contains("train") && j["train"].is_object()) read_train(j["train"], s.train, source);
    get(j, "aviary_path", s.aviary_path, source);
    get(j, "threads", s.threads, source);
    get(j, "last_image", s.last_image, source);
    get(j, "last_audio", s.last_audio, source);
    get(j, "audio_model", s.audio_model, source);
    return s;
}

Settings load_settings(const std::string& path) {
    if (!fs::exists(path)) return Settings{};
    std::string text;
    AVIARY_CHECK(read_whole_file(path, text), "cannot read settings '", path, "'");
    return settings_from_json(text, "settings '" + path + "'");
}

void save_settings(const std::string& path, const Settings& s) {
    const fs::path dir = fs::path(path).parent_path();
    if (!dir.empty()) {
        std::error_code ec;
        fs::create_directories(dir, ec);
        AVIARY_CHECK(!ec, "cannot create the settings directory '", dir.string(), "': ", ec.message());
    }
    write_file_atomic(path, settings_to_json(s));
}

}  // namespace aviary::studio
