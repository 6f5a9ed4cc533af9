// Shared helpers for the core tests: where fixtures live. (tests/common/test_main.cpp provides main.)
#include <gtest/gtest.h>
