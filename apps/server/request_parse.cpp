// Request validation for the generation endpoints: types and ranges of every field we read, OpenAI's shapes for
// prompts, stop sequences and chat content parts (text, image_url with a data: URL), errors naming the field.
#include "request_parse.h"

#include <cctype>
#include <cstdint>

#include "api_error.h"
#include "base64.h"

namespace aviary::server {
namespace {

using nlohmann::json;

// The value of `key` when present and not null.
const json* field(const json& body, const char* key) {
    auto it = body.find(key);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<float> number_in(const json& body, const char* key, double lo, double hi) {
    const json* v = field(body, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw bad_field(key, std::string("'") + key + "' must be a number");
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
        throw bad_field(key, std::string("'") + key + "' must be between " + json(lo).dump() + " and " +
                                 json(hi).dump() + ", got " + v->dump());
    return static_cast<float>(x);
}

std::optional<int64_t> integer_in(const json& body, const char* key, int64_t lo, int64_t hi) {
    const json* v = field(body, key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer())
        throw bad_field(key, std::string("'") + key + "' must be an integer, got " + v->dump().substr(0, 40));
    // Unsigned values above INT64_MAX are out of range too.
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
        throw bad_field(key, std::string("'") + key + "' must be at most " + std::to_string(hi));
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi)
        throw bad_field(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                                 std::to_string(hi) + ", got " + std::to_string(x));
    return x;
}

bool boolean(const json& body, const char* key) {
    const json* v = field(body, key);
    if (!v) return false;
    if (!v->is_boolean()) throw bad_field(key, std::string("'") + key + "' must be true or false");
    return v->get<bool>();
}

std::string string_field(const json& body, const char* key) {
    const json* v = field(body, key);
    if (!v) return {};
    if (!v->is_string()) throw bad_field(key, std::string("'") + key + "' must be a string");
    return v->get<std::string>();
}

constexpr size_t kMaxStops = 16, kMaxStopBytes = 256;

void parse_common(const json& body, const RequestLimits& limits, GenerationRequest& r) {
    r.model = string_field(body, "model");
    r.temperature = number_in(body, "temperature", 0, 100);
    r.top_p = number_in(body, "top_p", 0, 1);
    r.presence_penalty = number_in(body, "presence_penalty", -10, 10);
    r.frequency_penalty = number_in(body, "frequency_penalty", -10, 10);
    r.penalty_decay = number_in(body, "penalty_decay", 0, 1);
    if (auto k = integer_in(body, "top_k", 0, 1 << 30)) r.top_k = static_cast<int>(*k);
    const char* max_key = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (auto n = integer_in(body, max_key, 1, limits.max_tokens)) r.max_tokens = static_cast<int>(*n);
    if (auto s = integer_in(body, "seed", INT64_MIN, INT64_MAX)) r.seed = static_cast<uint64_t>(*s);
    integer_in(body, "n", 1, 1);  // one choice per request
    if (const json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
        throw bad_field("logprobs", "'logprobs' is not supported");
    if (const json* s = field(body, "stop")) {
        if (s->is_string()) {
            r.stop.push_back(s->get<std::string>());
        } else if (s->is_array()) {
            if (s->size() > kMaxStops) throw bad_field("stop", "'stop' takes at most 16 sequences");
            for (const auto& x : *s) {
                if (!x.is_string()) throw bad_field("stop", "'stop' must be a string or an array of strings");
                r.stop.push_back(x.get<std::string>());
            }
        } else {
            throw bad_field("stop", "'stop' must be a string or an array of strings");
        }
        for (const auto& x : r.stop)
            if (x.size() > kMaxStopBytes) throw bad_field("stop", "a stop sequence is longer than 256 bytes");
    }
    r.stream = boolean(body, "stream");
    r.ignore_eos = boolean(body, "ignore_eos");
    if (const json* so = field(body, "stream_options")) {
        if (!so->is_object()) throw bad_field("stream_options", "'stream_options' must be an object");
        r.include_usage = boolean(*so, "include_usage");
    }
    r.load_state = string_field(body, "load_state");
    r.save_state = string_field(body, "save_state");
    if (!r.load_state.empty()) check_state_id(r.load_state, "load_state");
    if (!r.save_state.empty()) check_state_id(r.save_state, "save_state");
}

// "data:image/png;base64,...." -> the bytes.
std::string decode_data_url(const std::string& url) {
    const std::string param = "messages.content.image_url";
    if (url.rfind("data:", 0) != 0)
        throw bad_field(param, "images must be data: URLs (data:image/...;base64,...); the server fetches nothing");
    const std::string_view base64_mark = ";base64";
    const size_t comma = url.find(',');
    // comma >= 5 here ("data:" comes first), so the mark needs its own length check before it is compared.
    if (comma == std::string::npos || comma < base64_mark.size() ||
        std::string_view(url).substr(comma - base64_mark.size(), base64_mark.size()) != base64_mark)
        throw bad_field(param, "the image data: URL must be base64 (data:image/...;base64,...)");
    auto bytes = base64_decode(std::string_view(url).substr(comma + 1));
    if (!bytes || bytes->empty()) throw bad_field(param, "the image data: URL holds no valid base64 data");
    return std::move(*bytes);
}

ChatMessage parse_message(const json& m, size_t index) {
    const std::string where = "messages[" + std::to_string(index) + "]";
    if (!m.is_object()) throw bad_field("messages", where + " must be an object");
    ChatMessage out;
    const json* role = field(m, "role");
    if (!role || !role->is_string()) throw bad_field("messages", where + ".role must be a string");
    out.role = role->get<std::string>();
    if (out.role == "developer") out.role = "system";  // OpenAI's newer name for system messages
    if (out.role != "system" && out.role != "user" && out.role != "assistant")
        throw bad_field("messages", where + ".role must be system, user or assistant, got '" + out.role + "'");
    const json* content = field(m, "content");
    if (!content) throw bad_field("messages", where + ".content is missing");
    if (content->is_string()) {
        out.text = content->get<std::string>();
    } else if (content->is_array()) {
        for (const auto& part : *content) {
            const json* type = part.is_object() ? field(part, "type") : nullptr;
            if (!type || !type->is_string())
                throw bad_field("messages", where + ".content parts must be objects with a 'type'");
            const std::string t = type->get<std::string>();
            if (t == "text") {
                const json* text = field(part, "text");
                if (!text || !text->is_string())
                    throw bad_field("messages", where + " text part needs a 'text' string");
                if (!out.text.empty()) out.text += "\n";
                out.text += text->get<std::string>();
            } else if (t == "image_url") {
                if (out.role != "user") throw bad_field("messages", where + ": only user messages may hold images");
                const json* iu = field(part, "image_url");
                const json* url = iu && iu->is_object() ? field(*iu, "url") : iu;
                if (!url || !url->is_string())
                    throw bad_field("messages", where + " image_url part needs image_url.url (a string)");
                out.images.push_back(decode_data_url(url->get<std::string>()));
            } else {
                throw bad_field("messages",
                                where + ": content part type '" + t + "' is not supported (text, image_url)");
            }
        }
    } else {
        throw bad_field("messages", where + ".content must be a string or an array of content parts");
    }
    return out;
}

}  // namespace

bool GenerationRequest::has_images() const {
    for (const auto& m : messages)
        if (!m.images.empty()) return true;
    return false;
}

void check_state_id(const std::string& id, const std::string& param) {
    bool ok = !id.empty() && id.size() <= 64;
    for (const char c : id)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!ok) throw bad_field(param, "'" + param + "' must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
}

nlohmann::json parse_json_body(const std::string& body) {
    // Any nlohmann exception is a 400: parse errors, and also numbers out of double's range (e.g. 1e309), which throw
    // out_of_range even from the non-throwing parse (found by fuzzing: tests/fuzz/regressions/server_request/).
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        // Say where: nlohmann's own message names the byte.
        throw ApiError(400, std::string("the request body is not valid JSON (") + e.what() + ")",
                       "invalid_request_error", "", "invalid_json");
    }
    if (!j.is_object())
        throw ApiError(400, "the request body must be a JSON object", "invalid_request_error", "", "invalid_json");
    return j;
}

GenerationRequest parse_completion_request(const json& body, const RequestLimits& limits) {
    GenerationRequest r;
    parse_common(body, limits, r);
    if (boolean(body, "echo")) throw bad_field("echo", "'echo' is not supported");
    const json* p = field(body, "prompt");
    if (!p) throw bad_field("prompt", "'prompt' is required");
    auto as_ids = [&](const json& a) {
        std::vector<int32_t> ids;
        for (const auto& x : a) {
            if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX)
                throw bad_field("prompt", "'prompt' token ids must be non-negative integers");
            ids.push_back(static_cast<int32_t>(x.get<int64_t>()));
        }
        return ids;
    };
    if (p->is_string()) {
        r.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        r.prompt = (*p)[0].get<std::string>();
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
        r.prompt_ids = as_ids(*p);
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_array()) {
        r.prompt_ids = as_ids((*p)[0]);
    } else if (p->is_array() && p->size() > 1) {
        throw bad_field("prompt", "one prompt per request ('prompt' holds several)");
    } else {
        throw bad_field("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
    }
    return r;
}

GenerationRequest parse_chat_request(const json& body, const RequestLimits& limits) {
    GenerationRequest r;
    r.chat = true;
    parse_common(body, limits, r);
    const json* m = field(body, "messages");
    if (!m) throw bad_field("messages", "'messages' is required");
    if (!m->is_array() || m->empty()) throw bad_field("messages", "'messages' must be a non-empty array");
    for (size_t i = 0; i < m->size(); ++i) r.messages.push_back(parse_message((*m)[i], i));
    if (const json* tools = field(body, "tools"); tools && !(tools->is_array() && tools->empty()))
        throw bad_field("tools", "'tools' is not supported");
    return r;
}

}  // namespace aviary::server
