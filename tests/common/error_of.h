// Test helper: the message of the aviary::Error a call throws, or "(no error)".
#pragma once
#include <functional>
#include <string>

#include "aviary/core/error.h"

namespace aviary::test {

inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const aviary::Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace aviary::test
