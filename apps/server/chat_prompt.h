// Chat messages -> the prompt of a World chat model (core chat_format.h, spec §6.5): "System: …\n\n" for system
// messages (as RWKV-Runner and Ai00 render them), "User: …\n\n", "Assistant: …\n\n", then "Assistant:".
#pragma once
#include <string>
#include <vector>

#include "request_parse.h"

namespace aviary::server {

// Messages whose cleaned text is empty are left out; a conversation with no text at all is a 400 (param messages).
std::string render_chat_prompt(const std::vector<ChatMessage>& messages);

// The question of an image request: the text of the last user message (the one holding the image, or a later
// one), cleaned. Exactly one image in the conversation, and some question text, else 400.
struct ImageQuestion {
    std::string image;     // encoded bytes
    std::string question;  // cleaned text
};
ImageQuestion image_question(const std::vector<ChatMessage>& messages);

}  // namespace aviary::server
