// Chat prompt rendering for the server (chat_prompt.h): OpenAI roles to World chat turns, through the one home of
// the format (core chat_format.h).
#include "chat_prompt.h"

#include "api_error.h"
#include "aviary/core/chat_format.h"

namespace aviary::server {

std::string render_chat_prompt(const std::vector<ChatMessage>& messages) {
    std::string out;
    for (const auto& m : messages) {
        if (clean_chat_message(m.text).empty()) continue;
        const char* role = m.role == "system" ? "System" : m.role == "user" ? "User" : "Assistant";
        out += chat_turn(role, m.text);
    }
    if (out.empty()) throw bad_field("messages", "the messages hold no text");
    return out + kChatAssistantPrefix;
}

ImageQuestion image_question(const std::vector<ChatMessage>& messages) {
    ImageQuestion q;
    int images = 0;
    for (const auto& m : messages) {
        images += static_cast<int>(m.images.size());
        if (!m.images.empty()) q.image = m.images.front();
        if (m.role == "user" && !clean_chat_message(m.text).empty()) q.question = clean_chat_message(m.text);
    }
    if (images != 1)
        throw bad_field("messages", "a conversation may hold one image, it holds " + std::to_string(images));
    if (q.question.empty()) throw bad_field("messages", "the image comes with no question (a text part)");
    return q;
}

}  // namespace aviary::server
