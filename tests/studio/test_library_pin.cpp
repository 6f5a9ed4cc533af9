// pin_loaded_libraries (apps/studio/library_pin.h): a module pinned by its name's suffix stays mapped after the
// dlclose that would otherwise unload it (the control: without the pin, the same dlclose unloads it).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "library_pin.h"

using aviary::studio::pin_loaded_libraries;

namespace {

const std::string kProbe = AVIARY_PIN_PROBE_PATH;  // …/libaviary_pin_probe_dri.so

bool loaded() {
    void* h = dlopen(kProbe.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (h) dlclose(h);  // drops the reference NOLOAD added
    return h != nullptr;
}

}  // namespace

TEST(LibraryPin, UnpinnedModuleUnloadsOnDlclose) {
    void* h = dlopen(kProbe.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    EXPECT_TRUE(loaded());
    ASSERT_EQ(dlclose(h), 0);
    EXPECT_FALSE(loaded()) << "the control failed: this libc keeps modules mapped anyway";
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
    EXPECT_TRUE(loaded());
}
