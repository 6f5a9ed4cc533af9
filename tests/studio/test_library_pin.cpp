// pin_loaded_libraries (apps/studio/library_pin.h): a module pinned by its name's suffix stays mapped after the
// dlclose that would otherwise unload it. The control, a module built from the same source that is never pinned,
// shows that the same dlclose does unload a module on this libc.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "library_pin.h"

using aviary::studio::pin_loaded_libraries;

namespace {

const std::string kProbe = AVIARY_PIN_PROBE_PATH;      // …/libaviary_pin_probe_dri.so
const std::string kControl = AVIARY_PIN_CONTROL_PATH;  // …/libaviary_pin_control.so

bool loaded(const std::string& path) {
    void* h = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (h) dlclose(h);  // drops the reference NOLOAD added
    return h != nullptr;
}

}  // namespace

TEST(LibraryPin, UnpinnedModuleUnloadsOnDlclose) {
    void* h = dlopen(kControl.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    EXPECT_TRUE(loaded(kControl));
    ASSERT_EQ(dlclose(h), 0);
    EXPECT_FALSE(loaded(kControl)) << "the control failed: this libc keeps modules mapped anyway";
}

TEST(LibraryPin, PinnedModuleStaysMappedAfterDlclose) {
    void* h = dlopen(kProbe.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    EXPECT_TRUE(pin_loaded_libraries("_no_such_suffix.so").empty());
    EXPECT_TRUE(pin_loaded_libraries("").empty());
    const auto pinned = pin_loaded_libraries("_pin_probe_dri.so");
    ASSERT_EQ(pinned.size(), 1u);
    EXPECT_EQ(pinned[0], kProbe);
    ASSERT_EQ(dlclose(h), 0);
    EXPECT_TRUE(loaded(kProbe));
}
