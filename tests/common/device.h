// Whether `--device cuda` can work in this build and on this machine (core's check_device; needs aviary::core).
#pragma once
#include <exception>

#include "aviary/core/model.h"

namespace aviary::test {

inline bool cuda_usable() {
    try {
        aviary::check_device("cuda");
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace aviary::test
