// Force-included (-include) by bench/cuda/run_model_device.sh only: names that Debian's LibTorch 1.13 has and
// LibTorch 2.x dropped, used by sources outside this folder (trainer.cpp, train_checkpoint.cpp), so the device build
// goes through until those files are ported. Delete once they compile against both.
#pragma once
#if defined(__cplusplus) && __has_include(<c10/core/GradMode.h>)  // not in CMake's try-compiles
#include <c10/core/GradMode.h>

#include <sstream>
#include <string>

namespace at {
using NoGradGuard = c10::NoGradGuard;
}
namespace c10::guts {
template <typename T>
std::string to_string(const T& value) {  // 1.13's version: anything with operator<<
    std::ostringstream os;
    os << value;
    return os.str();
}
}
#endif
