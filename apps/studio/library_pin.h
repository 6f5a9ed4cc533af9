// Keeping shared libraries mapped until the process ends. Mesa's DRI driver (swrast_dri.so and kin) keeps a few
// allocations reachable only from its own globals; libGL unloads the driver when GLFW closes the display, after
// which LeakSanitizer no longer scans those globals and reports the blocks (2 × 56 bytes per run, with a stack it
// cannot symbolise because the module is gone). Pinning the driver (RTLD_NODELETE) before glfwTerminate keeps its
// globals visible, so a leak report from an ASan build of the studio is about the studio again.
#pragma once
#include <string>
#include <vector>

namespace aviary::studio {

// Marks every loaded library whose file name ends with `suffix` as never-unloaded (dlopen with RTLD_NOLOAD |
// RTLD_NODELETE: a later dlclose leaves it mapped). Returns the paths pinned; loads nothing new.
std::vector<std::string> pin_loaded_libraries(const std::string& suffix);

}  // namespace aviary::studio
