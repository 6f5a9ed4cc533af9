// The RWKV World chat format (spec §6.5; ChatRWKV API_DEMO_CHAT.py): turns "Role: message\n\n", the prompt ends
// with "Assistant:" and no trailing space, messages cleaned so that only the turn separator is a blank line.
// One home for it: `aviary chat`, the studio and `aviary serve` render turns through these.
#pragma once
#include <string>
#include <string_view>

namespace aviary {

// "\r\n" -> "\n" (every "\r" dropped), runs of newlines collapsed to one, surrounding spaces, tabs and newlines
// stripped (spec §6.5).
std::string clean_chat_message(std::string_view message);

// One turn: "{role}: {clean_chat_message(message)}\n\n", e.g. chat_turn("User", "hi") == "User: hi\n\n".
std::string chat_turn(std::string_view role, std::string_view message);

// What ends a rendered conversation so that the model answers: "Assistant:" (no trailing space).
constexpr const char* kChatAssistantPrefix = "Assistant:";

}  // namespace aviary
