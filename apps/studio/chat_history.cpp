// Chat history JSON (chat_history.h).
#include "chat_history.h"

#include <nlohmann/json.hpp>

#include "aviary/core/error.h"

namespace aviary::studio {

std::string history_to_json(const std::vector<ChatMessage>& messages) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& m : messages) j.push_back({{"role", m.role}, {"text", m.text}});
    // Invalid UTF-8 (a stopped multi-byte character) is replaced rather than thrown on.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<ChatMessage> history_from_json(const std::string& text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        AVIARY_FAIL("chat history is not JSON (", e.what(), ")");
    }
    AVIARY_CHECK(j.is_array(), "chat history: expected a JSON array");
    std::vector<ChatMessage> out;
    for (const auto& m : j) {
        AVIARY_CHECK(
            m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("text") && m["text"].is_string(),
            "chat history: each entry needs string \"role\" and \"text\"");
        out.push_back({m["role"].get<std::string>(), m["text"].get<std::string>()});
    }
    return out;
}

}  // namespace aviary::studio
