// Pinning loaded libraries (library_pin.h): dl_iterate_phdr lists what is mapped, dlopen(RTLD_NOLOAD |
// RTLD_NODELETE) promotes each match to "never unload" without loading anything.
#include "library_pin.h"

#include <dlfcn.h>
#include <link.h>

namespace aviary::studio {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::string> pin_loaded_libraries(const std::string& suffix) {
    std::vector<std::string> loaded;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            if (info->dlpi_name && *info->dlpi_name)
                static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
            return 0;
        },
        &loaded);
    std::vector<std::string> pinned;
    for (const std::string& path : loaded)
        if (!suffix.empty() && ends_with(path, suffix) && dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE))
            pinned.push_back(path);  // the handle's extra reference is never released: the point is to stay
    return pinned;
}

}  // namespace aviary::studio
