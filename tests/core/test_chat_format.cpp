// Chat format tests (core/src/chat_format.cpp): the clean-up of spec §6.5 and the turn layout of API_DEMO_CHAT.py.
#include <gtest/gtest.h>

#include "aviary/core/chat_format.h"

namespace {

TEST(ChatFormat, CleanCollapsesNewlinesAndStrips) {
    EXPECT_EQ(aviary::clean_chat_message("  hello\r\n\r\n\n world \t\n"), "hello\n world");
    EXPECT_EQ(aviary::clean_chat_message("a\n\n\nb\nc"), "a\nb\nc");
    EXPECT_EQ(aviary::clean_chat_message(" \r\n\t "), "");
    EXPECT_EQ(aviary::clean_chat_message("x"), "x");
}

TEST(ChatFormat, TurnsAreSeparatedByOneBlankLine) {
    EXPECT_EQ(aviary::chat_turn("User", " hi\n\n"), "User: hi\n\n");
    EXPECT_EQ(aviary::chat_turn("User", "hi") + aviary::kChatAssistantPrefix, "User: hi\n\nAssistant:");
    EXPECT_EQ(aviary::chat_turn("System", "be\r\n\r\nbrief"), "System: be\nbrief\n\n");
}

}  // namespace
