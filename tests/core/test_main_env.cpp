// Shared helpers for the core tests: where fixtures live. (gtest_main provides main.)
#include <gtest/gtest.h>
