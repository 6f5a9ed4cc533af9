// The chat history the UI keeps (Tracy keeps its chat on the UI side too) and its JSON form, stored in
// session files next to the state (chat_session.h).
#pragma once
#include <string>
#include <vector>

namespace aviary::studio {

struct ChatMessage {
    std::string role;  // "user" or "model"
    std::string text;
};

std::string history_to_json(const std::vector<ChatMessage>& messages);
// Throws aviary::Error when the text is not a JSON array of {"role", "text"} objects.
std::vector<ChatMessage> history_from_json(const std::string& text);

}  // namespace aviary::studio
